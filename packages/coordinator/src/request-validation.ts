import { type EngineRequest, RequestRejectedError } from './request.ts';

function isTokenId(value: unknown): boolean {
  return Number.isInteger(value) && (value as number) >= 0;
}

/**
 * Throws RequestRejectedError for a request that is malformed or can never run: an empty
 * prompt, or one with no room for a single output token within `maxModelLen` (which the
 * scheduler already caps at the KV cache's capacity).
 */
export function validateRequest(request: EngineRequest, maxModelLen: number, numCacheTokens: number): void {
  const { requestId, promptTokenIds, sampling } = request;
  const reject = (why: string): never => {
    throw new RequestRejectedError(`request ${JSON.stringify(requestId)} rejected: ${why}`);
  };
  if (typeof requestId !== 'string') reject('requestId must be a string');
  if (!Array.isArray(promptTokenIds) || promptTokenIds.length === 0) reject('empty prompt');
  if (!promptTokenIds.every(isTokenId)) reject('prompt token ids must be non-negative integers');
  if (promptTokenIds.length >= numCacheTokens) {
    reject(
      `prompt of ${promptTokenIds.length} tokens plus one output does not fit the KV cache of ${numCacheTokens} tokens`,
    );
  }
  if (promptTokenIds.length >= maxModelLen) {
    reject(`prompt of ${promptTokenIds.length} tokens leaves no room below maxModelLen ${maxModelLen}`);
  }
  if (!sampling) reject('missing sampling params');
  if (!Number.isInteger(sampling.maxTokens) || sampling.maxTokens < 1)
    reject('maxTokens must be an integer >= 1');
  if (!(sampling.temperature >= 0) || !Number.isFinite(sampling.temperature))
    reject('temperature must be >= 0');
  if (!(sampling.topP > 0 && sampling.topP <= 1)) reject('topP must be in (0, 1]');
  if (!Number.isInteger(sampling.topK)) reject('topK must be an integer');
  if (sampling.seed !== null && !Number.isSafeInteger(sampling.seed))
    reject('seed must be a safe integer or null');
  for (const name of ['presencePenalty', 'frequencyPenalty'] as const) {
    const penalty = sampling[name];
    if (penalty !== undefined && !(Number.isFinite(penalty) && penalty >= -2 && penalty <= 2))
      reject(`${name} must be a number in [-2, 2]`);
  }
  const { numLogprobs } = sampling;
  if (numLogprobs !== undefined && !(Number.isInteger(numLogprobs) && numLogprobs >= 0 && numLogprobs <= 20))
    reject('numLogprobs must be an integer in [0, 20]');
  if (!Array.isArray(sampling.stopTokenIds) || !sampling.stopTokenIds.every(isTokenId)) {
    reject('stopTokenIds must be non-negative integers');
  }
}
