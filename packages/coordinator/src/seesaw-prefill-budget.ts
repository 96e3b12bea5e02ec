import type { HostKvAllocator } from '@seesaw/kv-store';
import type { Sequence } from './sequence.ts';

/**
 * Smallest pipelined prefill step: smaller steps lose more to per-step overhead than the pipeline
 * gains (seesaw simulate, 128/64 on a 2-CPU profile: a 128-token floor is 0.3% slower).
 */
const MIN_PIPELINED_PREFILL_TOKENS = 256;
/**
 * Micro-batches a pipelined prefill phase is cut into, per pipeline stage. The phase fills and
 * drains its pipeline once: pp - 1 micro-batch slots of M + pp - 1 leave a stage idle, so 16 per
 * stage idle a 2-stage pipeline for 1/33 of the phase (4 per stage idled it for 1/9: about 1.7 s
 * of a 512/16 run on 2 CPU devices, 2026-12-05). The static P2 engine's 512-token steps are as
 * fine-grained.
 */
const PIPELINE_MICRO_BATCHES_PER_STAGE = 16;

/** The seesaw scheduler's prefill-phase state the step budget is cut from (read only). */
export interface PrefillBudgetState {
  /** Admitted, prompt not fully computed. */
  prefilling: readonly Sequence[];
  /** Front = next to admit. */
  waiting: readonly Sequence[];
  host: HostKvAllocator;
  /** Pipeline stages: pp of the prefill layout. */
  numStages: number;
}

/**
 * Token budget of each prefill step. One step in flight: the whole budget (greedy, as the
 * paper's artifact). With a pipeline (numStages = pp > 1) one greedy step could swallow the
 * whole phase's prompts and leave every stage but one idle, so at the phase's first step the
 * prompt tokens the phase can take (those the host tier has room for) are cut into
 * PIPELINE_MICRO_BATCHES_PER_STAGE * pp equal micro-batches (M micro-batches keep a pp-stage
 * pipeline busy M / (M + pp - 1) of the time), never below MIN_PIPELINED_PREFILL_TOKENS nor above
 * the budget. The cut is kept for the rest of the phase, so its steps stay equal as prompts finish.
 */
export class PrefillStepBudget {
  /** This prefill phase's pipelined step budget, fixed at its first step; null before it. */
  private microBatchTokens: number | null = null;

  constructor(private readonly maxNumBatchedTokens: number) {}

  /** A new phase: the next pipelined step cuts the budget afresh. */
  startPhase(): void {
    this.microBatchTokens = null;
  }

  /** Tokens the next prefill step may take. */
  next(state: PrefillBudgetState): number {
    if (state.numStages === 1) return this.maxNumBatchedTokens;
    if (this.microBatchTokens !== null) return this.microBatchTokens;
    const numMicroBatches = PIPELINE_MICRO_BATCHES_PER_STAGE * state.numStages;
    let numPendingTokens = 0;
    for (const seq of state.prefilling) numPendingTokens += seq.numUncomputedTokens;
    const host = state.host;
    let numFreeSlots = host.numFreeSlots;
    for (const seq of state.waiting) {
      const numSlots = host.slotsForTokens(seq.numTokens);
      if (numSlots > numFreeSlots || numPendingTokens >= numMicroBatches * this.maxNumBatchedTokens) break;
      numFreeSlots -= numSlots;
      numPendingTokens += seq.numTokens;
    }
    const perMicroBatch = Math.ceil(numPendingTokens / numMicroBatches);
    this.microBatchTokens = Math.min(
      this.maxNumBatchedTokens,
      Math.max(MIN_PIPELINED_PREFILL_TOKENS, perMicroBatch),
    );
    return this.microBatchTokens;
  }
}
