import { type EngineRequest, RequestRejectedError } from './request.ts';
import { Sequence } from './sequence.ts';

/** Throws the RequestRejectedError that says why the request can never run. */
export function rejectRequest(request: EngineRequest, why: string): never {
  throw new RequestRejectedError(`request ${JSON.stringify(request.requestId)} rejected: ${why}`);
}

/**
 * A scheduler's intake: every request id it ever queued (ids are never reused, even once
 * finished) and the next sequence id, handed out in queueing order.
 */
export class RequestIntake {
  private readonly requestIds = new Set<string>();
  private nextSeqId = 0;

  constructor(
    private readonly eosTokenIds: readonly number[],
    private readonly nextRandomSeed: () => number,
  ) {}

  /** Throws RequestRejectedError when a request with this id was queued before. */
  rejectDuplicate(request: EngineRequest): void {
    if (this.requestIds.has(request.requestId)) rejectRequest(request, 'duplicate requestId');
  }

  /** The accepted request's sequence (sequenceOfRequest), its id now taken. */
  admit(request: EngineRequest, arrivalMs: number): Sequence {
    const seq = sequenceOfRequest(
      request,
      this.nextSeqId++,
      this.eosTokenIds,
      this.nextRandomSeed,
      arrivalMs,
    );
    this.requestIds.add(request.requestId);
    return seq;
  }
}

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
      // Only a non-zero penalty travels: without one, the device's step is exactly as before.
      ...(sampling.presencePenalty ? { presencePenalty: sampling.presencePenalty } : {}),
      ...(sampling.frequencyPenalty ? { frequencyPenalty: sampling.frequencyPenalty } : {}),
      ...(sampling.numLogprobs !== undefined ? { numLogprobs: sampling.numLogprobs } : {}),
    },
    maxTokens: sampling.maxTokens,
    stopTokenIds,
    stopWhen: request.stopWhen,
    onProgress: request.onProgress,
    arrivalMs,
  });
}
