/**
 * Coordinator <-> kv-store messages: the coordinator owns slot accounting policy, the
 * kv-store owns the host memory behind the slots.
 */

import { arrayOf, count, str } from '../check.ts';
import type { Heartbeat, Hello, ProtocolError, Refused, Shutdown, Welcome } from './common.ts';
import { type MessageSchema, schema } from './schema.ts';

/** Reserve host slots (one KV block each) for a sequence about to be swapped out. */
export interface Reserve {
  tag: 'reserve';
  /** Id echoed in reserved / reserveFailed. */
  requestId: number;
  /** Sequence the slots are for. */
  seqId: number;
  /** Slots wanted. */
  numSlots: number;
}

/** Give slots back (the sequence was swapped in or finished). */
export interface Release {
  tag: 'release';
  /** Sequence the slots belonged to. */
  seqId: number;
  /** Slots to free. */
  slotIds: number[];
}

/** Ask for the store's size and free space. */
export interface CapacityQuery {
  tag: 'capacityQuery';
  /** Id echoed in capacity. */
  requestId: number;
}

export type CoordinatorToKvStore =
  | Hello
  | Reserve
  | Release
  | CapacityQuery
  | Heartbeat
  | Shutdown
  | ProtocolError;

/** Slots granted for a reserve. */
export interface Reserved {
  tag: 'reserved';
  /** Reserve.requestId answered. */
  requestId: number;
  /** Sequence the slots are for. */
  seqId: number;
  /** Granted slot ids, numSlots of them. */
  slotIds: number[];
}

/** A reserve could not be granted; nothing was reserved. */
export interface ReserveFailed {
  tag: 'reserveFailed';
  /** Reserve.requestId answered. */
  requestId: number;
  /** Sequence the slots were for. */
  seqId: number;
  /** Why, e.g. 'only 3 free slots'. */
  reason: string;
}

/** The store's size; also sent unprompted after the handshake with requestId 0. */
export interface Capacity {
  tag: 'capacity';
  /** CapacityQuery.requestId answered (0 when unprompted). */
  requestId: number;
  /** Slots the store has. */
  numSlots: number;
  /** Slots currently free. */
  numFreeSlots: number;
  /** Bytes per slot (one KV block over all layers and heads this host stores). */
  slotBytes: number;
}

export type KvStoreToCoordinator =
  | Welcome
  | Refused
  | Reserved
  | ReserveFailed
  | Capacity
  | Heartbeat
  | ProtocolError;

const idList = arrayOf(count);

export const coordinatorToKvStoreSchemas: Record<'reserve' | 'release' | 'capacityQuery', MessageSchema> = {
  reserve: schema({ requestId: count, seqId: count, numSlots: count }),
  release: schema({ seqId: count, slotIds: idList }),
  capacityQuery: schema({ requestId: count }),
};

export const kvStoreToCoordinatorSchemas: Record<'reserved' | 'reserveFailed' | 'capacity', MessageSchema> = {
  reserved: schema({ requestId: count, seqId: count, slotIds: idList }),
  reserveFailed: schema({ requestId: count, seqId: count, reason: str(1024) }),
  capacity: schema({ requestId: count, numSlots: count, numFreeSlots: count, slotBytes: count }),
};
