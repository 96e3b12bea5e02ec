import type { EngineRequest } from './request.ts';
import { Sequence } from './sequence.ts';

/**
 * The scheduler-side sequence of a validated request: stop tokens are the request's plus (unless
 * ignoreEos) the model's EOS ids; a null seed takes `nextRandomSeed()` now, so every later
 * recompute or re-shard samples the same stream.
 */
export function sequenceOfRequest(
  request: EngineRequest,
  seqId: number,
  eosTokenIds: readonly number[],
  nextRandomSeed: () => number,
  arrivalMs: number,
): Sequence {
  const { sampling } = request;
  const stopTokenIds = new Set(sampling.stopTokenIds);
  if (!sampling.ignoreEos) for (const id of eosTokenIds) stopTokenIds.add(id);
  return new Sequence({
    seqId,
    requestId: request.requestId,
    promptTokenIds: [...request.promptTokenIds],
    deviceSampling: {
      temperature: sampling.temperature,
      topP: sampling.topP,
      topK: sampling.topK,
      seed: sampling.seed ?? nextRandomSeed(),
    },
    maxTokens: sampling.maxTokens,
    stopTokenIds,
    arrivalMs,
  });
}
