import type { StepBatch, StepResult } from '@seesaw/protocol';

/** The work of one sequence in a planned step. */
export interface ScheduledChunk {
  readonly seqId: number;
  readonly startPos: number;
  readonly numNewTokens: number;
  readonly isSampled: boolean;
}

/** A scheduled step: the batch for the device, and what Scheduler.update() needs to apply its result. */
export interface StepPlan {
  readonly batch: StepBatch;
  readonly chunks: readonly ScheduledChunk[];
  readonly preemptedSeqIds: readonly number[];
}

/**
 * Throws unless `result` answers `plan`: same step id, and exactly one well-formed token
 * per sampled chunk, in batch order. Checked before any state changes.
 */
export function checkResultMatchesPlan(plan: StepPlan, result: StepResult): void {
  const { stepId } = plan.batch;
  if (result.stepId !== stepId) throw new Error(`result of step ${result.stepId} given for step ${stepId}`);
  const sampledChunks = plan.chunks.filter((chunk) => chunk.isSampled);
  if (result.sampled.length !== sampledChunks.length) {
    throw new Error(
      `step ${stepId}: expected ${sampledChunks.length} sampled tokens, got ${result.sampled.length}`,
    );
  }
  sampledChunks.forEach((chunk, i) => {
    const { seqId, tokenId } = result.sampled[i];
    if (seqId !== chunk.seqId)
      throw new Error(`step ${stepId}: sampled seq ${seqId}, expected ${chunk.seqId}`);
    if (!Number.isInteger(tokenId) || tokenId < 0) throw new Error(`step ${stepId}: bad token ${tokenId}`);
  });
}
