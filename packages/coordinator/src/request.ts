import type { SampledLogprobs } from '@seesaw/protocol';
import type { SamplingParams } from './sampling-params.ts';

export interface EngineRequest {
  requestId: string;
  promptTokenIds: number[];
  sampling: SamplingParams;
}

/** 'stop': a stop or EOS token was generated; 'length': maxTokens or the model length cap was hit. */
export type FinishReason = 'stop' | 'length';

/** A finished request. Times are milliseconds on the engine's clock. */
export interface RequestOutput {
  requestId: string;
  promptTokenIds: number[];
  /** Generated tokens, the final stop/EOS token included. */
  outputTokenIds: number[];
  finishReason: FinishReason;
  /** One entry per output token, only when the request asked (SamplingParams.numLogprobs). */
  outputLogprobs?: SampledLogprobs[];
  numPreemptions: number;
  arrivalMs: number;
  firstTokenMs: number;
  finishMs: number;
}

/** A request that can never run (nothing is queued when this is thrown). */
export class RequestRejectedError extends Error {
  override name = 'RequestRejectedError';
}
