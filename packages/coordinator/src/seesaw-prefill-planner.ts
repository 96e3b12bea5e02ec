import type { BlockAllocator } from './block-allocator.ts';
import type { StepBuilder } from './seesaw-step-builder.ts';
import { numBlocksFor, type Sequence } from './sequence.ts';

/** The seesaw scheduler's prefill-phase state, edited in place by planPrefillStep. */
export interface PrefillPlanContext {
  /** Admitted, prompt not fully computed, admission order: admissions are pushed. */
  prefilling: Sequence[];
  /** Front = next to admit: admissions shift from it. */
  waiting: Sequence[];
  isBusy(seq: Sequence): boolean;
  tokenBudget: number;
  allocator: BlockAllocator;
  canReserveHost(numTokens: number): boolean;
  reserveHost(seq: Sequence, numTokens: number): void;
}

/**
 * One prefill step: idle mid-prompt sequences take their next chunk, then waiting ones are
 * admitted FIFO, all within the token budget (a prompt over it is chunked over steps). Admission
 * needs host slots for the whole prompt (its KV goes there) and device blocks for it too, so two
 * admitted prompts can never wait on each other's blocks; the head of the queue that does not
 * fit stops admission (FIFO, no overtaking). The chunk that ends a prompt samples its first
 * token and writes all its positions back to the reserved host slots.
 */
export function planPrefillStep(builder: StepBuilder, ctx: PrefillPlanContext): void {
  let budget = ctx.tokenBudget;
  const takeChunk = (seq: Sequence): void => {
    const numNewTokens = Math.min(seq.numUncomputedTokens, budget);
    builder.take(seq, numNewTokens);
    budget -= numNewTokens;
    const end = seq.numComputedTokens + numNewTokens;
    if (end === seq.numTokens) builder.kvWriteBacks.push(builder.kvSwap(seq, end));
  };
  for (const seq of ctx.prefilling) {
    if (budget === 0) return;
    if (!ctx.isBusy(seq)) takeChunk(seq);
  }
  while (ctx.waiting.length > 0 && budget > 0) {
    const seq = ctx.waiting[0];
    const numBlocks = numBlocksFor(seq.numTokens, builder.blockSize);
    if (!ctx.canReserveHost(seq.numTokens) || !ctx.allocator.canAllocate(numBlocks)) return;
    ctx.waiting.shift();
    ctx.reserveHost(seq, seq.numTokens);
    seq.blockIds = ctx.allocator.allocate(numBlocks);
    seq.status = 'running';
    ctx.prefilling.push(seq);
    builder.add(seq);
    takeChunk(seq);
  }
}
