/**
 * The swap family of the coordinator <-> device link: preemption by swapping moves a sequence's
 * KV blocks to the host kv-store (`swapOut`) and back (`swapIn`); the device answers `swapDone`.
 */

import { id, idList } from './coordinator-device-step.ts';
import type { MessageRule } from './schema.ts';

/** Copy a sequence's KV blocks to the host kv-store (preemption by swapping). */
export interface SwapOut {
  tag: 'swapOut';
  /** Coordinator-chosen id echoed in swapDone. */
  swapId: number;
  /** Sequence whose blocks move. */
  seqId: number;
  /** Device KV block ids, in sequence order. */
  blockIds: number[];
  /** kv-store slot ids receiving them, one per block. */
  slotIds: number[];
}

/** Copy a sequence's KV blocks back from the kv-store into device blocks. */
export interface SwapIn {
  tag: 'swapIn';
  /** Coordinator-chosen id echoed in swapDone. */
  swapId: number;
  /** Sequence whose blocks move. */
  seqId: number;
  /** Device KV block ids to fill, in sequence order. */
  blockIds: number[];
  /** kv-store slot ids to read, one per block. */
  slotIds: number[];
}

/** A swapOut or swapIn finished. */
export interface SwapDone {
  tag: 'swapDone';
  /** SwapOut/SwapIn.swapId answered. */
  swapId: number;
  /** Sequence whose blocks moved. */
  seqId: number;
}

export const swapFields = { swapId: id, seqId: id, blockIds: idList, slotIds: idList };

export const swapTensors: MessageRule = (message, tensors) => {
  if (tensors.length) return 'expected no tensors';
  const m = message as unknown as SwapOut;
  return m.blockIds.length === m.slotIds.length ? undefined : 'blockIds and slotIds differ in length';
};
