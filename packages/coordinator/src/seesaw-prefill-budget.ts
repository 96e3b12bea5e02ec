import type { HostKvAllocator } from '@seesaw/kv-store';
import type { Sequence } from './sequence.ts';

/**
 * Smallest pipelined prefill step: smaller steps lose more to per-step overhead than the pipeline
 * gains. Was 256 (seesaw simulate, 128/64 on a 2-CPU profile, had a 128-token floor 0.3% slower);
 * measured on the engine once the matmul ran as fast at 128 rows as at 512 (2026-12-06, small
 * P2->T2, interleaved pairs 256 vs 128): 128/64 five pairs 0.99x, 1.05x, 1.06x, 1.02x, 1.00x
 * (the P2 phase's fill and drain is half as long), 64/256 three pairs 1.01x, 1.02x, 0.99x.
 */
const MIN_PIPELINED_PREFILL_TOKENS = 128;
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
  /** Whether a sequence is in a step in flight (its next chunk cannot be planned yet). */
  isBusy(seq: Sequence): boolean;
}

/**
 * Token budget of each prefill step. One step in flight: the whole budget (greedy, as the
 * paper's artifact). With a pipeline (numStages = pp > 1) one greedy step could swallow the
 * whole phase's prompts and leave every stage but one idle, so at the phase's first step the
 * prompt tokens the phase can take (those the host tier has room for) are cut into
 * PIPELINE_MICRO_BATCHES_PER_STAGE * pp equal micro-batches (M micro-batches keep a pp-stage
 * pipeline busy M / (M + pp - 1) of the time), never below MIN_PIPELINED_PREFILL_TOKENS nor above
 * the budget. The cut is kept for the rest of the phase, so its steps stay equal as prompts finish,
 * except at the end: once the prompts left fit one micro-batch, about half of them (whole prompts)
 * go first. The pipeline's makespan is the first stage's work plus the last stage's time on the
 * phase's last micro-batch, during which every other stage idles: halving that micro-batch halves
 * the drain (a prompt is never split for it: its second chunk would wait for the first to leave
 * the pipeline).
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
    this.microBatchTokens ??= this.cut(state);
    return halfOfTheLastMicroBatch(state, this.microBatchTokens) ?? this.microBatchTokens;
  }

  private cut(state: PrefillBudgetState): number {
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
    return Math.min(this.maxNumBatchedTokens, Math.max(MIN_PIPELINED_PREFILL_TOKENS, perMicroBatch));
  }
}

/**
 * When the prompts the phase has left to plan (idle mid-prompt ones, then those waiting that the
 * host tier has room for, in the planner's order) fit one micro-batch of `microBatchTokens` and
 * come to at least MIN_PIPELINED_PREFILL_TOKENS over two or more prompts: the tokens of the
 * fewest whole prompts that make up half of them or more. Otherwise null.
 */
function halfOfTheLastMicroBatch(state: PrefillBudgetState, microBatchTokens: number): number | null {
  const chunks: number[] = [];
  let total = 0;
  for (const seq of state.prefilling) {
    if (state.isBusy(seq)) continue;
    chunks.push(seq.numUncomputedTokens);
    total += seq.numUncomputedTokens;
    if (total > microBatchTokens) return null;
  }
  const host = state.host;
  let numFreeSlots = host.numFreeSlots;
  for (const seq of state.waiting) {
    const numSlots = host.slotsForTokens(seq.numTokens);
    if (numSlots > numFreeSlots) break;
    numFreeSlots -= numSlots;
    chunks.push(seq.numTokens);
    total += seq.numTokens;
    if (total > microBatchTokens) return null;
  }
  if (chunks.length < 2 || total < MIN_PIPELINED_PREFILL_TOKENS) return null;
  let first = 0;
  for (const tokens of chunks) {
    first += tokens;
    if (2 * first >= total) break;
  }
  return first < total ? first : null;
}
