/**
 * gpu-actor <-> kv-store messages: KV cache slices moved between device memory and the
 * host's kv-store (swap, prefix reuse). A slice is a box of (layers x heads x tokens).
 */

import { arrayOf, count, range, str } from '../check.ts';
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
}

export type DeviceToKvStore = Hello | KvPut | KvGet | Heartbeat | ProtocolError;

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

export type KvStoreToDevice = Welcome | Refused | KvData | KvPutDone | KvError | Heartbeat | ProtocolError;

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

export const deviceToKvStoreSchemas: Record<KvPut['tag'] | KvGet['tag'], MessageSchema> = {
  kvPut: schema(address, sliceRule, optionalAddress),
  kvGet: schema(address, noTensors, optionalAddress),
};

export const kvStoreToDeviceSchemas: Record<'kvData' | 'kvPutDone' | 'kvError', MessageSchema> = {
  kvData: schema(address, sliceRule, optionalAddress),
  kvPutDone: schema({ requestId: count }),
  kvError: schema({ requestId: count, message: str(4096) }),
};
