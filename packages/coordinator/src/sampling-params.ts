/** Per-request generation settings, with vLLM's defaults. */
export interface SamplingParams {
  /** Most output tokens to generate (>= 1). */
  maxTokens: number;
  /** 0 means greedy (argmax). */
  temperature: number;
  /** Nucleus mass in (0, 1]; 1 disables. */
  topP: number;
  /** Keep the k most likely tokens; 0 disables. */
  topK: number;
  /** Seed of the request's random stream; null gets a random seed when the request is added. */
  seed: number | null;
  /** Extra token ids that end the request (kept in the output, finish reason 'stop'). */
  stopTokenIds: number[];
  /** Keep generating past the model's EOS token ids. */
  ignoreEos: boolean;
  /**
   * OpenAI's presence and frequency penalties in [-2, 2], over the tokens generated so far.
   * Absent means 0: requests without them keep their exact old form (and request hashes).
   */
  presencePenalty?: number;
  frequencyPenalty?: number;
  /**
   * Return log probabilities of each output token and of this many (0..20) most likely
   * alternatives (RequestOutput.outputLogprobs). Absent: none are computed.
   */
  numLogprobs?: number;
}

export const DEFAULT_SAMPLING: SamplingParams = Object.freeze({
  maxTokens: 16,
  temperature: 1,
  topP: 1,
  topK: 0,
  seed: null,
  stopTokenIds: Object.freeze([]) as unknown as number[],
  ignoreEos: false,
});

/** A uniformly random seed in [0, 2^32): any safe integer is valid for the device RNG. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 0x1_0000_0000);
}
