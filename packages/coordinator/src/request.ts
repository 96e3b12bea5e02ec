import type { SampledLogprobs } from '@seesaw/protocol';
import type { SamplingParams } from './sampling-params.ts';

export interface EngineRequest {
  requestId: string;
  promptTokenIds: number[];
  sampling: SamplingParams;
  /**
   * Ends the request early (finish reason 'stop') once its outputs so far satisfy it: checked
   * after each sampled token, e.g. for OpenAI stop strings. A function, so it stays in this
   * process: a job client sends requests without it (the caller's cut afterwards still applies).
   */
  stopWhen?: (outputTokenIds: readonly number[]) => boolean;
  /**
   * Progress hook (token streaming): called with the outputs so far each time a token of this
   * request is sampled, the last one included, before the request is reported finished. Only
   * requests that set it pay for it. A function too: a job client asks the coordinator for
   * progress messages instead (requestProgress) and calls it itself.
   */
  onProgress?: (outputTokenIds: readonly number[]) => void;
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
