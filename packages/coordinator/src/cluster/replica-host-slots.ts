/**
 * One replica's share of a host KV tier that several replicas use: its scheduler allots slot ids
 * 0..numSlots-1, the host's kv-store knows them as slotOffset + id.
 */
import type { StepBatch, StepKvSwap } from '@seesaw/protocol';

export interface ReplicaHostSlots {
  /** Slots the replica's scheduler allots, ids 0..numSlots-1. */
  numSlots: number;
  /** Where they start in the host's kv-store. */
  slotOffset: number;
}

/**
 * The batch with the slot ids of every KV move (swap-outs, swap-ins, write-backs, prefetches)
 * moved into the replica's range; throws for an id outside 0..numSlots-1. The batch itself is
 * not changed.
 */
export function withHostSlots(batch: StepBatch, slots: ReplicaHostSlots, dpRank: number): StepBatch {
  const move = (swap: StepKvSwap): StepKvSwap => ({
    ...swap,
    slotIds: swap.slotIds.map((id) => {
      if (!(Number.isInteger(id) && id >= 0 && id < slots.numSlots))
        throw new RangeError(`host slot ${id} is outside replica ${dpRank}'s ${slots.numSlots} slots`);
      return slots.slotOffset + id;
    }),
  });
  const mapped: StepBatch = { ...batch };
  if (batch.swapOuts) mapped.swapOuts = batch.swapOuts.map(move);
  if (batch.swapIns) mapped.swapIns = batch.swapIns.map(move);
  if (batch.kvWriteBacks) mapped.kvWriteBacks = batch.kvWriteBacks.map(move);
  if (batch.prefetches) mapped.prefetches = batch.prefetches.map(move);
  return mapped;
}
