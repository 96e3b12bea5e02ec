import type { Sequence } from './sequence.ts';
import type { ScheduledChunk, StepPlan } from './step-plan.ts';

/** Token and event counters over a scheduler's life. */
export interface SchedulerCounters {
  numSteps: number;
  /** All tokens sent to the device (prompt chunks, recompute, decode). */
  numScheduledTokens: number;
  /** Prompt positions computed for the first time. */
  numPromptTokensComputed: number;
  /** Positions computed again after a preemption. */
  numRecomputedTokens: number;
  numOutputTokens: number;
  /** Preemptions of any kind; the swap counters below count those by swap. */
  numPreemptions: number;
  numFinishedRequests: number;
  /** Sequences copied to the host tier on preemption. */
  numSwapOuts: number;
  /** Sequences copied back from the host tier on readmission. */
  numSwapIns: number;
  /** KV bytes copied by swaps, both directions. */
  swappedBytes: number;
  /** Phase switches (re-shards) of the seesaw policy; 0 for the static one. */
  numSwitches: number;
  /** Sequences whose KV a step wrote back to the host tier while computing (kvWriteBacks). */
  numWriteBacks: number;
  /** Sequences whose KV a step fetched from the host tier ahead of use (prefetches). */
  numPrefetches: number;
  /** Token positions whose KV moved between device and host tier: swaps, write-backs, prefetches. */
  kvMovedTokens: number;
  /** Host-tier bytes of those moves (whole slots): per token, halved by a 16-bit KV dtype. */
  kvMovedBytes: number;
}

export function emptyCounters(): SchedulerCounters {
  return {
    numSteps: 0,
    numScheduledTokens: 0,
    numPromptTokensComputed: 0,
    numRecomputedTokens: 0,
    numOutputTokens: 0,
    numPreemptions: 0,
    numFinishedRequests: 0,
    numSwapOuts: 0,
    numSwapIns: 0,
    swappedBytes: 0,
    numSwitches: 0,
    numWriteBacks: 0,
    numPrefetches: 0,
    kvMovedTokens: 0,
    kvMovedBytes: 0,
  };
}

/**
 * Counts a computed chunk, split into recompute (positions below the sequence's high-water
 * mark, i.e. computed before a preemption) and fresh positions; fresh positions inside the
 * prompt are prompt tokens. Call before the sequence's high-water mark moves.
 */
export function countComputedChunk(counters: SchedulerCounters, seq: Sequence, chunk: ScheduledChunk): void {
  const end = chunk.startPos + chunk.numNewTokens;
  const firstFresh = Math.min(end, Math.max(chunk.startPos, seq.numEverComputedTokens));
  counters.numScheduledTokens += chunk.numNewTokens;
  counters.numRecomputedTokens += firstFresh - chunk.startPos;
  counters.numPromptTokensComputed += Math.max(0, Math.min(end, seq.promptTokenIds.length) - firstFresh);
}

/** Counts an updated step, its preemptions and its KV transfers; `bytesOf` sizes `numTokens` of KV on the host. */
export function countStepTransfers(
  counters: SchedulerCounters,
  plan: StepPlan,
  bytesOf: (numTokens: number) => number,
): void {
  const { batch } = plan;
  const bytesOfSwaps = (swaps: readonly { numTokens: number }[] = []) =>
    swaps.reduce((sum, swap) => sum + bytesOf(swap.numTokens), 0);
  counters.numSteps++;
  counters.numPreemptions += plan.preemptedSeqIds.length;
  counters.numSwapOuts += batch.swapOuts?.length ?? 0;
  counters.numSwapIns += batch.swapIns?.length ?? 0;
  counters.swappedBytes += bytesOfSwaps(batch.swapOuts) + bytesOfSwaps(batch.swapIns);
  counters.numWriteBacks += batch.kvWriteBacks?.length ?? 0;
  counters.numPrefetches += batch.prefetches?.length ?? 0;
  for (const swaps of [batch.swapOuts, batch.swapIns, batch.kvWriteBacks, batch.prefetches])
    countKvMoves(counters, swaps ?? [], bytesOf);
}

/** Adds `swaps` (each a sequence's first numTokens positions) to the KV-moved figures. */
export function countKvMoves(
  counters: SchedulerCounters,
  swaps: readonly { numTokens: number }[],
  bytesOf: (numTokens: number) => number,
): void {
  for (const swap of swaps) {
    counters.kvMovedTokens += swap.numTokens;
    counters.kvMovedBytes += bytesOf(swap.numTokens);
  }
}
