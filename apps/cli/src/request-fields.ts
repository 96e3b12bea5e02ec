/**
 * The request fields shared by plain prompt lines and OpenAI batch bodies (`prompt`,
 * `max_tokens`, sampling settings, flags), each checked for type and range, turned into the
 * engine's SamplingParams. Problems are collected, not thrown, so one error record can name
 * every problem of a line.
 */
import type { SamplingParams } from '@seesaw/coordinator';
import { describeValue, LineProblems } from './line-problems.ts';
import { readNumLogprobs } from './logprobs-request.ts';
import { checkOpenAiNoOpFields } from './openai-fields.ts';
import { readBoolean, readNumber } from './request-field-readers.ts';
import {
  type InputValidationContext,
  isTokenId,
  MAX_CHOICES,
  readChatPrompt,
  readPrompts,
} from './request-prompt.ts';
import { readStopStrings } from './stop-strings.ts';

export { describeValue, LineProblems };

/** Which OpenAI API a request is for: a prompt, or chat messages rendered by the template. */
export type RequestEndpoint = 'completions' | 'chat';

/** Defaults follow the OpenAI completions API / vLLM: 16 tokens, temperature 1, no top-p/top-k cut. */
export const DEFAULT_MAX_TOKENS = 16;

export const REQUEST_FIELDS = [
  'prompt',
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'top_k',
  'seed',
  'stop_token_ids',
  'stop',
  'ignore_eos',
  'return_token_ids',
  'presence_penalty',
  'frequency_penalty',
  'logprobs',
  'top_logprobs',
  'n',
  'echo',
] as const;

/** Seeds feed the device RNG as exact integers (any sign), so they must survive float64. */
const MAX_SEED = Number.MAX_SAFE_INTEGER;

function readStopTokenIds(
  object: Record<string, unknown>,
  vocabSize: number,
  problems: LineProblems,
): number[] | undefined {
  const value = object.stop_token_ids;
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.some((id) => !isTokenId(id, vocabSize))) {
    problems.add(
      `stop_token_ids must be an array of token ids in [0, ${vocabSize}), got ${JSON.stringify(value)}`,
    );
    return undefined;
  }
  return value as number[];
}

/**
 * `max_tokens`, or its newer OpenAI name `max_completion_tokens` (both given must agree). A cap
 * that the prompt leaves no room for is an error, as OpenAI and vLLM answer it, not a silent cut;
 * without a cap the default (16) is cut to the room left, as before.
 */
function readMaxTokens(
  object: Record<string, unknown>,
  promptTokenIds: number[] | null,
  context: InputValidationContext,
  problems: LineProblems,
): number | undefined {
  const rule = { isInteger: true, isValid: (v: number) => v >= 1, expected: 'an integer >= 1' };
  const maxTokens = readNumber(object, 'max_tokens', rule, problems);
  const maxCompletionTokens = readNumber(object, 'max_completion_tokens', rule, problems);
  if (maxTokens !== undefined && maxCompletionTokens !== undefined && maxTokens !== maxCompletionTokens) {
    problems.add(
      `max_tokens ${maxTokens} and max_completion_tokens ${maxCompletionTokens} disagree: give one of them`,
    );
  }
  const cap = maxTokens ?? maxCompletionTokens;
  if (cap !== undefined && promptTokenIds !== null && promptTokenIds.length + cap > context.maxModelLen) {
    const name = maxTokens !== undefined ? 'max_tokens' : 'max_completion_tokens';
    problems.add(
      `${name} ${cap} plus the prompt's ${promptTokenIds.length} tokens is more than the model's maximum ` +
        `length of ${context.maxModelLen} tokens: lower ${name} to at most ${context.maxModelLen - promptTokenIds.length}`,
    );
  }
  return cap;
}

export interface RequestFields {
  /** The first (or only) prompt's ids; null when the prompt was refused. */
  promptTokenIds: number[] | null;
  /** Every prompt of the request (a list of prompts gives several), each with n choices. */
  prompts: number[][];
  /** Each prompt's text as given, or null for token ids and chat (for echo). */
  promptTexts: (string | null)[];
  /** Choices per prompt (OpenAI `n`). */
  n: number;
  /** completions `echo`: the prompt text is put before each choice's text. */
  isEchoed: boolean;
  sampling: SamplingParams;
  isTokenIdsReturned: boolean;
  /** OpenAI `stop` strings: the answer is cut before the first one (stop-strings.ts). */
  stopStrings: string[];
}

export function readRequestFields(
  object: Record<string, unknown>,
  context: InputValidationContext,
  problems: LineProblems,
  endpoint: RequestEndpoint = 'completions',
): RequestFields {
  const read =
    endpoint === 'chat'
      ? { tokenIds: [readChatPrompt(object, context, problems)], texts: [null] }
      : readPrompts(object.prompt, context, problems);
  const promptTokenIds = read?.tokenIds[0] ?? null;
  const prompts = read === null || promptTokenIds === null ? [] : (read.tokenIds as number[][]);
  const n =
    readNumber(
      object,
      'n',
      {
        isInteger: true,
        isValid: (v) => v >= 1 && v <= MAX_CHOICES,
        expected: `an integer in [1, ${MAX_CHOICES}]`,
      },
      problems,
    ) ?? 1;
  if (prompts.length * n > MAX_CHOICES) {
    problems.add(
      `${prompts.length} prompts x n ${n} is more than the ${MAX_CHOICES} choices one request may have`,
    );
  }
  const isEchoed = readBoolean(object, 'echo', problems) ?? false;
  // The cap must leave room after the longest prompt of a list.
  const longest = prompts.reduce<number[] | null>(
    (a, b) => (a === null || b.length > a.length ? b : a),
    null,
  );
  const maxTokens = readMaxTokens(object, longest, context, problems);
  const temperature = readNumber(
    object,
    'temperature',
    { isInteger: false, isValid: (v) => v >= 0, expected: 'a number >= 0' },
    problems,
  );
  const topP = readNumber(
    object,
    'top_p',
    { isInteger: false, isValid: (v) => v > 0 && v <= 1, expected: 'a number in (0, 1]' },
    problems,
  );
  const topK = readNumber(
    object,
    'top_k',
    { isInteger: true, isValid: (v) => v >= -1, expected: 'an integer >= -1 (-1 or 0 disables it)' },
    problems,
  );
  const seed = readNumber(
    object,
    'seed',
    {
      isInteger: true,
      isValid: (v) => Math.abs(v) <= MAX_SEED,
      expected: `an integer in [-${MAX_SEED}, ${MAX_SEED}]`,
    },
    problems,
  );
  const penaltyRule = {
    isInteger: false,
    isValid: (v: number) => v >= -2 && v <= 2,
    expected: 'a number in [-2, 2]',
  };
  const presencePenalty = readNumber(object, 'presence_penalty', penaltyRule, problems);
  const frequencyPenalty = readNumber(object, 'frequency_penalty', penaltyRule, problems);
  const numLogprobs = readNumLogprobs(object, endpoint, problems);
  if (isEchoed && endpoint === 'chat')
    problems.add('echo is a completions field; chat requests do not take it');
  if (isEchoed && numLogprobs !== undefined) {
    problems.add(
      'echo with logprobs is not supported (prompt log probabilities are not returned): drop one of them',
    );
  }
  const stopTokenIds = readStopTokenIds(object, context.vocabSize, problems);
  const ignoreEos = readBoolean(object, 'ignore_eos', problems);
  const stopStrings = readStopStrings(object.stop, problems);
  if (stopStrings.length > 0 && context.tokenizer === null) {
    problems.add("stop strings need the model's tokenizer (tokenizer.json); give stop_token_ids instead");
  }
  checkOpenAiNoOpFields(object, problems);
  const isTokenIdsReturned = readBoolean(object, 'return_token_ids', problems);
  return {
    promptTokenIds,
    prompts,
    promptTexts: read?.texts ?? [],
    n,
    isEchoed,
    sampling: {
      maxTokens: maxTokens ?? DEFAULT_MAX_TOKENS,
      temperature: temperature ?? 1,
      topP: topP ?? 1,
      // -1 is vLLM's "disabled"; the engine uses 0 for the same.
      topK: topK === undefined || topK < 0 ? 0 : topK,
      seed: seed ?? null,
      stopTokenIds: stopTokenIds ?? [],
      ignoreEos: ignoreEos ?? false,
      // Zero penalties are left out: such a request is exactly the one without them.
      ...(presencePenalty ? { presencePenalty } : {}),
      ...(frequencyPenalty ? { frequencyPenalty } : {}),
      ...(numLogprobs !== undefined ? { numLogprobs } : {}),
    },
    isTokenIdsReturned: isTokenIdsReturned ?? false,
    stopStrings,
  };
}
