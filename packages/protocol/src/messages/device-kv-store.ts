/**
 * gpu-actor <-> kv-store messages: KV cache slices moved between device memory and the
 * host's kv-store (swap, prefix reuse). A slice is a box of (layers x heads x tokens).
 */

import { arrayOf, bool, count, oneOf, range, str } from '../check.ts';
import type { Heartbeat, Hello, ProtocolError, Range, Refused, Welcome } from './common.ts';
import { ACTIVATION_DTYPES } from './device-device.ts';
import { type MessageRule, type MessageSchema, noTensors, oneTensor, sameShape, schema } from './schema.ts';

/**
 * Addresses one KV slice. Its tensor is [layers, 2 (K then V), heads, tokens, headDim]:
 * the dims follow the ranges' lengths; headDim is the model's.
 */
export interface KvSliceAddress {
  /** Request id echoed in the answer. */
  requestId: number;
  /** Sequence the KV belongs to. */
  seqId: number;
  /** Decoder layers, [start, end). */
  layers: Range;
  /** KV heads, [start, end) (a tensor-parallel rank holds a head range). */
  heads: Range;
  /** Token positions, [start, end). */
  tokens: Range;
  /**
   * Host slots holding the sequence's tokens, slot i for tokens [i * tokensPerSlot, ...), as
   * the coordinator's scheduler allotted them. Present: the store addresses these slots directly
   * (no reservation of its own; the scheduler is the authority). Absent: the slots the store's
   * own allocator reserved for seqId.
   */
  slotIds?: number[];
}

/** Store a KV slice; answered by kvPutDone or kvError. */
export interface KvPut extends KvSliceAddress {
  tag: 'kvPut';
}

/** Fetch a KV slice; answered by kvData or kvError. */
export interface KvGet extends KvSliceAddress {
  tag: 'kvGet';
  /** A prefetch: its device awaits it only at a later step, so the store may serve other devices' requests first. */
  isPrefetch?: boolean;
}

/**
 * Shared-memory path (device and kv-store threads of one host): the device's KV cache lives in a
 * SharedArrayBuffer announced on the link (WorkerPortEndpoint.shareRegion) before this message;
 * the store keeps a view of it for this link and copies between its slots and the cache's blocks
 * itself. Answered by kvCacheShared, or kvError when the store cannot see the region (a relayed
 * link to another host's store): the device then keeps moving KV in frames. Sent again after a
 * re-shard re-views the cache; the latest one replaces the earlier ones.
 */
export interface KvCacheShare {
  tag: 'kvCacheShare';
  requestId: number;
  /** Region id the buffer was announced under on this link. */
  region: number;
  /** Global decoder layers the cache holds, as its local layers 0..; one K and one V array each. */
  layers: Range;
  /** Global KV heads the cache holds, as its local heads 0.. . */
  heads: Range;
  dtype: 'f32' | 'bf16' | 'f16';
  numBlocks: number;
  blockSize: number;
  headDim: number;
  /** Byte offset in the region of local layer i's K array ([block][head][slotInBlock][headDim]). */
  keyOffsets: number[];
  /** Same for the V arrays. */
  valueOffsets: number[];
}

/**
 * Copy a box between the shared cache's blocks and host slots, done by the store's thread:
 * kvCopyOut reads the blocks into the slots (swap-out, write-back), kvCopyIn writes the slots
 * into the blocks (swap-in, prefetch). blockIds[i] holds tokens [i * blockSize, ...); the box's
 * layers and heads are global and must lie inside the shared cache's. Answered by kvCopyDone
 * once the bytes are copied, or kvError.
 */
export interface KvCopyOut extends KvSliceAddress {
  tag: 'kvCopyOut';
  blockIds: number[];
}

export interface KvCopyIn extends KvSliceAddress {
  tag: 'kvCopyIn';
  blockIds: number[];
  /** As KvGet.isPrefetch. */
  isPrefetch?: boolean;
}

export type DeviceToKvStore =
  | Hello
  | KvPut
  | KvGet
  | KvCacheShare
  | KvCopyOut
  | KvCopyIn
  | Heartbeat
  | ProtocolError;

/** The slice a kvGet asked for. */
export interface KvData extends KvSliceAddress {
  tag: 'kvData';
}

/** A kvPut was stored. */
export interface KvPutDone {
  tag: 'kvPutDone';
  /** KvPut.requestId answered. */
  requestId: number;
}

/** A kvPut or kvGet failed (no space, unknown slice). */
export interface KvError {
  tag: 'kvError';
  /** Request id answered. */
  requestId: number;
  /** Detail for logs. */
  message: string;
}

/** The store holds a view of the shared cache of KvCacheShare.requestId. */
export interface KvCacheShared {
  tag: 'kvCacheShared';
  requestId: number;
}

/** A kvCopyOut or kvCopyIn is done: the bytes are in the slots (out) or the blocks (in). */
export interface KvCopyDone {
  tag: 'kvCopyDone';
  requestId: number;
}

export type KvStoreToDevice =
  | Welcome
  | Refused
  | KvData
  | KvPutDone
  | KvCacheShared
  | KvCopyDone
  | KvError
  | Heartbeat
  | ProtocolError;

/** Expected [layers, 2, heads, tokens, headDim] for an address, taking headDim from the tensor. */
export function kvSliceShape(address: KvSliceAddress, headDim: number): number[] {
  const { layers, heads, tokens } = address;
  return [layers.end - layers.start, 2, heads.end - heads.start, tokens.end - tokens.start, headDim];
}

const sliceRule: MessageRule = oneTensor(ACTIVATION_DTYPES, (message, shape) =>
  sameShape(shape, kvSliceShape(message as unknown as KvSliceAddress, shape[4] ?? -1)),
);

const address = { requestId: count, seqId: count, layers: range, heads: range, tokens: range };
const optionalAddress = { slotIds: arrayOf(count, 1 << 16, 1) };
const optionalFetch = { ...optionalAddress, isPrefetch: bool };

const blockCopy = { ...address, blockIds: arrayOf(count, 1 << 16, 1) };
const byteOffsets = arrayOf(count, 1 << 12, 1);

export const deviceToKvStoreSchemas: Record<
  KvPut['tag'] | KvGet['tag'] | KvCacheShare['tag'] | KvCopyOut['tag'] | KvCopyIn['tag'],
  MessageSchema
> = {
  kvPut: schema(address, sliceRule, optionalAddress),
  kvGet: schema(address, noTensors, optionalFetch),
  kvCacheShare: schema({
    requestId: count,
    region: count,
    layers: range,
    heads: range,
    dtype: oneOf(...ACTIVATION_DTYPES),
    numBlocks: count,
    blockSize: count,
    headDim: count,
    keyOffsets: byteOffsets,
    valueOffsets: byteOffsets,
  }),
  kvCopyOut: schema(blockCopy, noTensors, optionalAddress),
  kvCopyIn: schema(blockCopy, noTensors, optionalFetch),
};

export const kvStoreToDeviceSchemas: Record<
  'kvData' | 'kvPutDone' | 'kvCacheShared' | 'kvCopyDone' | 'kvError',
  MessageSchema
> = {
  kvData: schema(address, sliceRule, optionalAddress),
  kvPutDone: schema({ requestId: count }),
  kvCacheShared: schema({ requestId: count }),
  kvCopyDone: schema({ requestId: count }),
  kvError: schema({ requestId: count, message: str(4096) }),
};
