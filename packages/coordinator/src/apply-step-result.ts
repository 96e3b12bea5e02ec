import type { StepResult } from '@seesaw/protocol';
import type { FinishReason, RequestOutput } from './request.ts';
import { countComputedChunk, type SchedulerCounters } from './scheduler-counters.ts';
import type { Sequence } from './sequence.ts';
import type { StepPlan } from './step-plan.ts';

/**
 * Applies a checked step result to its sequences, in batch order: computed positions move on,
 * sampled tokens are appended (and reported to the request's onProgress hook), and a sequence that stops (stop token, maxTokens or maxModelLen)
 * is handed to `finish` and reported. Shared by both scheduling policies.
 */
export function applyStepResult(
  plan: StepPlan,
  result: StepResult,
  seqsById: ReadonlyMap<number, Sequence>,
  counters: SchedulerCounters,
  maxModelLen: number,
  nowMs: number,
  finish: (seq: Sequence, reason: FinishReason) => void,
): RequestOutput[] {
  const outputs: RequestOutput[] = [];
  let sampledIndex = 0;
  for (const chunk of plan.chunks) {
    const seq = seqsById.get(chunk.seqId)!;
    countComputedChunk(counters, seq, chunk);
    seq.numComputedTokens = chunk.startPos + chunk.numNewTokens;
    seq.numEverComputedTokens = Math.max(seq.numEverComputedTokens, seq.numComputedTokens);
    if (!chunk.isSampled) continue;
    const sampled = result.sampled[sampledIndex++];
    seq.outputTokenIds.push(sampled.tokenId);
    if (seq.outputLogprobs) {
      if (!sampled.logprobs)
        throw new Error(`step ${result.stepId}: no log probabilities for sequence ${seq.seqId}`);
      seq.outputLogprobs.push(sampled.logprobs);
    }
    counters.numOutputTokens++;
    if (seq.outputTokenIds.length === 1) seq.firstTokenMs = nowMs;
    seq.onProgress?.(seq.outputTokenIds);
    const finishReason = seq.checkFinished(maxModelLen);
    if (finishReason) {
      finish(seq, finishReason);
      outputs.push(seq.toOutput(nowMs));
    }
  }
  counters.numFinishedRequests += outputs.length;
  return outputs;
}
