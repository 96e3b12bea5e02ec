import type { BlockAllocator } from './block-allocator.ts';
import type { HostKvTier } from './host-kv-tier.ts';
import type { StepBuilder } from './seesaw-step-builder.ts';
import { numBlocksFor, type Sequence } from './sequence.ts';

/** See the admission at the start of a decode phase. */
const FIRST_STEP_SHARE_DIVISOR = 4;

/** The seesaw scheduler's decode-phase state, edited in place by planDecodeStep. */
export interface DecodePlanContext {
  /** On the device, admission order. Preempted ones get status 'waiting' (the caller drops them); ones admitted and decoded now are pushed. */
  running: Sequence[];
  /** KV in host slots, front first: admissions shift from it, swapped-out victims go to its front. */
  parked: Sequence[];
  /** Victims preempted by recompute go to its front (a later prefill phase recomputes them). */
  waiting: Sequence[];
  isBusy(seq: Sequence): boolean;
  /** Steps in flight. */
  numInFlight: number;
  /** Sequences admitted by a prefetch still in flight (they count against maxNumSeqs). */
  numIncoming: number;
  /** Leaving decode: every step writes its sequences' KV back and nothing is admitted. */
  isDraining: boolean;
  maxInFlight: number;
  maxNumSeqs: number;
  numWatermarkBlocks: number;
  allocator: BlockAllocator;
  hostTier: HostKvTier;
  reserveHost(seq: Sequence, numTokens: number): void;
  onPrefetched(seq: Sequence): void;
}

/**
 * One decode step of the seesaw policy:
 * 1. Idle running sequences in admission order each decode one token, at most
 *    ceil(on-device / maxInFlight) of them, so maxInFlight steps split the running set into
 *    disjoint micro-batches. A missing block preempts the most recently admitted idle sequence
 *    (possibly the one being planned): swap-out to the host when it has room (swapOuts, front of
 *    the parked queue), else recompute (front of the waiting queue). A step that would preempt
 *    its first sequence plans nothing while other steps are in flight (no rows would carry the
 *    preemptions); with none in flight that cannot happen, as every sequence fits alone. Draining, each decoded
 *    sequence also writes positions [0, computed after this step) back to newly reserved slots.
 * 2. Unless something was preempted or the phase is draining, parked sequences are admitted
 *    FIFO while on-device < maxNumSeqs and blocks for their KV plus the next token leave
 *    `numWatermarkBlocks` free (waived when nothing is on the device, so any sequence can
 *    start). They are prefetched (joining the batch once this step is updated), except when the
 *    step would otherwise be empty: then a micro-batch's share is swapped in and decoded now.
 */
export function planDecodeStep(builder: StepBuilder, ctx: DecodePlanContext): void {
  const { running, allocator } = ctx;
  const idle = running.filter((seq) => !ctx.isBusy(seq));
  const microBatchSize = Math.ceil((running.length + ctx.numIncoming) / ctx.maxInFlight);
  let numTaken = 0;
  for (let i = 0; i < idle.length && numTaken < microBatchSize; i++) {
    const seq = idle[i];
    const numMissingBlocks = numBlocksFor(seq.numComputedTokens + 1, builder.blockSize) - seq.blockIds.length;
    if (builder.isEmpty && ctx.numInFlight > 0) {
      // Preempting itself would leave this step without rows to carry the swap-outs and
      // releases: wait for the steps in flight instead (their sequences become victims then).
      let numFreeable = 0;
      for (let j = i + 1; j < idle.length; j++) numFreeable += idle[j].blockIds.length;
      if (!allocator.canAllocate(numMissingBlocks + numFreeable)) return;
    }
    let isSelfPreempted = false;
    while (!allocator.canAllocate(numMissingBlocks)) {
      const victim = idle.pop()!;
      preempt(builder, ctx, victim);
      if (victim === seq) {
        isSelfPreempted = true;
        break;
      }
    }
    if (isSelfPreempted) break;
    if (numMissingBlocks > 0) seq.blockIds.push(...allocator.allocate(numMissingBlocks));
    builder.take(seq, 1);
    numTaken++;
    if (ctx.isDraining) {
      const numTokens = seq.numComputedTokens + 1;
      ctx.reserveHost(seq, numTokens);
      builder.kvWriteBacks.push(builder.kvSwap(seq, numTokens));
    }
  }
  if (builder.preemptedSeqIds.length > 0 || ctx.isDraining) return;

  // Admission: swaps in and swaps out never share a step (no preemption above).
  let numOnDevice = running.length + ctx.numIncoming;
  const admitted: Sequence[] = [];
  while (ctx.parked.length > 0 && numOnDevice < ctx.maxNumSeqs) {
    const seq = ctx.parked[0];
    const numBlocks = numBlocksFor(seq.numComputedTokens + 1, builder.blockSize);
    if (!allocator.canAllocate(numBlocks, numOnDevice === 0 ? 0 : ctx.numWatermarkBlocks)) break;
    ctx.parked.shift();
    seq.blockIds = allocator.allocate(numBlocks);
    seq.status = 'running';
    builder.add(seq);
    admitted.push(seq);
    numOnDevice++;
  }
  // Nothing decoding (a decode phase starts): a quarter of a micro-batch is swapped in before this
  // step's compute, the rest is prefetched behind it and joins at the next step. Swapping the
  // whole batch in first would leave all of its KV transfer time exposed.
  const numDecodedNow = builder.isEmpty
    ? Math.ceil(numOnDevice / (FIRST_STEP_SHARE_DIVISOR * ctx.maxInFlight))
    : 0;
  admitted.forEach((seq, i) => {
    const swap = builder.kvSwap(seq, seq.numComputedTokens);
    if (i < numDecodedNow) {
      builder.swapIns.push(swap);
      builder.take(seq, 1);
      running.push(seq);
    } else {
      builder.prefetches.push(swap);
      ctx.onPrefetched(seq);
    }
  });
}

function preempt(builder: StepBuilder, ctx: DecodePlanContext, victim: Sequence): void {
  const swapOut = ctx.hostTier.trySwapOut(victim);
  if (swapOut) {
    builder.swapOuts.push(swapOut);
    ctx.parked.unshift(victim);
  } else {
    victim.numComputedTokens = 0;
    ctx.waiting.unshift(victim);
  }
  ctx.allocator.free(victim.blockIds);
  victim.blockIds = [];
  victim.numPreemptions++;
  victim.status = 'waiting';
  builder.preemptedSeqIds.push(victim.seqId);
}
