/**
 * The request fields shared by plain prompt lines and OpenAI batch bodies (`prompt`,
 * `max_tokens`, sampling settings, flags), each checked for type and range, turned into the
 * engine's SamplingParams. Problems are collected, not thrown, so one error record can name
 * every problem of a line.
 */
import type { SamplingParams } from '@seesaw/coordinator';
import { type ChatPrompter, readChatMessages } from './chat-template.ts';
import { describeValue, LineProblems } from './line-problems.ts';
import { readNumLogprobs } from './logprobs-request.ts';
import { checkOpenAiNoOpFields } from './openai-fields.ts';
import { readStopStrings } from './stop-strings.ts';

export { describeValue, LineProblems };

/** The only thing the parser needs from a tokenizer. */
export interface PromptEncoder {
  encode(text: string): number[];
  /** Longest input one token stands for, in UTF-8 bytes (default 64). */
  readonly maxTokenBytes?: number;
}

/**
 * Slack on the bytes-per-token bound: normalizers (NFC/NFKC) can shrink input a little before
 * it is matched against the vocabulary, so a token may cover somewhat more input bytes.
 */
const NORMALIZATION_SLACK = 4;

/** Most UTF-8 bytes a text prompt may have: beyond it the prompt cannot fit in maxModelLen tokens. */
export function maxPromptBytes(context: InputValidationContext): number {
  return context.maxModelLen * (context.tokenizer?.maxTokenBytes ?? 64) * NORMALIZATION_SLACK;
}

export interface InputValidationContext {
  vocabSize: number;
  /** Prompt plus output cap; a prompt must leave room for at least one output token. */
  maxModelLen: number;
  /** null when the model has no tokenizer.json: prompts must then be token ids. */
  tokenizer: PromptEncoder | null;
  /** The model's chat template with its tokenizer; null or absent when it has none. */
  chat?: ChatPrompter | null;
}

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

/** Most choices one request line may ask for (prompts x n), as OpenAI caps n. */
export const MAX_CHOICES = 128;

/** Seeds feed the device RNG as exact integers (any sign), so they must survive float64. */
const MAX_SEED = Number.MAX_SAFE_INTEGER;

function isTokenId(value: unknown, vocabSize: number): boolean {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) < vocabSize;
}

function readPrompt(
  value: unknown,
  context: InputValidationContext,
  problems: LineProblems,
): number[] | null {
  if (value === undefined || value === null) {
    problems.add('prompt is required');
    return null;
  }
  let tokenIds: number[];
  if (typeof value === 'string') {
    if (context.tokenizer === null) {
      problems.add(
        'prompt is text but the model has no tokenizer.json: give the prompt as an array of token ids',
      );
      return null;
    }
    // Checked before tokenizing: a huge line must cost its bytes, not a tokenizer run over them.
    const limit = maxPromptBytes(context);
    const bytes = value.length > limit / 3 ? Buffer.byteLength(value, 'utf8') : value.length;
    if (bytes > limit) {
      problems.add(
        `prompt is too long: ${bytes} bytes of text, more than the ${limit} bytes the model's maximum ` +
          `length of ${context.maxModelLen} tokens can hold`,
      );
      return null;
    }
    tokenIds = context.tokenizer.encode(value);
  } else if (Array.isArray(value)) {
    if (value.some((item) => typeof item !== 'number')) {
      problems.add('prompt must be a string, an array of token ids, or a list of either');
      return null;
    }
    const badIndex = value.findIndex((id) => !isTokenId(id, context.vocabSize));
    if (badIndex >= 0) {
      problems.add(
        `prompt token id ${value[badIndex]} at index ${badIndex} is outside the vocabulary [0, ${context.vocabSize})`,
      );
      return null;
    }
    tokenIds = value as number[];
  } else {
    problems.add(`prompt must be a string or an array of token ids, got ${describeValue(value)}`);
    return null;
  }
  return checkPromptLength(tokenIds, context, problems);
}

function checkPromptLength(
  tokenIds: number[],
  context: InputValidationContext,
  problems: LineProblems,
): number[] | null {
  if (tokenIds.length === 0) {
    problems.add('prompt is empty');
    return null;
  }
  if (tokenIds.length >= context.maxModelLen) {
    problems.add(
      `prompt is too long: ${tokenIds.length} tokens, but the model's maximum length is ${context.maxModelLen} ` +
        '(prompt plus at least one output token)',
    );
    return null;
  }
  return tokenIds;
}

/**
 * OpenAI's `prompt`: one prompt (a string or token ids), or a list of them (strings, or lists of
 * token ids), each answered by its own choices. Returns the prompts' ids and their texts (null
 * for token ids), or null after adding the problems.
 */
function readPrompts(
  value: unknown,
  context: InputValidationContext,
  problems: LineProblems,
): { tokenIds: number[][]; texts: (string | null)[] } | null {
  const isList =
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((item) => typeof item === 'string' || Array.isArray(item));
  const items = isList ? (value as unknown[]) : [value];
  if (items.length > MAX_CHOICES) {
    problems.add(`prompt lists ${items.length} prompts, more than the ${MAX_CHOICES} one request may have`);
    return null;
  }
  const tokenIds: number[][] = [];
  for (const [index, item] of items.entries()) {
    if (isList && Array.isArray(item) && item.some((id) => typeof id !== 'number')) {
      problems.add(`prompt[${index}] must be a string or an array of token ids`);
      return null;
    }
    const before = problems.messages.length;
    const ids = readPrompt(item, context, problems);
    if (ids === null) {
      // Name the list entry the problem is about.
      if (isList)
        for (let i = before; i < problems.messages.length; i++)
          problems.messages[i] = `prompt[${index}]: ${problems.messages[i]}`;
      return null;
    }
    tokenIds.push(ids);
  }
  return { tokenIds, texts: items.map((item) => (typeof item === 'string' ? item : null)) };
}

/** A chat request's prompt: its messages rendered by the model's chat template, then tokenized. */
function readChatPrompt(
  object: Record<string, unknown>,
  context: InputValidationContext,
  problems: LineProblems,
): number[] | null {
  const messages = readChatMessages(object.messages, problems);
  if (messages === null) return null;
  if (!context.chat) {
    problems.add(
      "the model has no chat template (chat_template in tokenizer_config.json): send completions with a 'prompt' instead",
    );
    return null;
  }
  let text: string;
  try {
    text = context.chat.render(messages);
  } catch (error) {
    problems.add(`the model's chat template failed on these messages: ${(error as Error).message}`);
    return null;
  }
  const limit = maxPromptBytes(context);
  if (Buffer.byteLength(text, 'utf8') > limit) {
    problems.add(`messages are too long: more than the ${limit} bytes the model's maximum length can hold`);
    return null;
  }
  return checkPromptLength(context.chat.encode(text), context, problems);
}

/** Reads an optional number field; null counts as absent (OpenAI clients send explicit nulls). */
function readNumber(
  object: Record<string, unknown>,
  name: string,
  rule: { isInteger: boolean; isValid: (value: number) => boolean; expected: string },
  problems: LineProblems,
): number | undefined {
  const value = object[name];
  if (value === undefined || value === null) return undefined;
  const isNumber = typeof value === 'number' && Number.isFinite(value);
  if (!isNumber || (rule.isInteger && !Number.isInteger(value)) || !rule.isValid(value as number)) {
    problems.add(`${name} must be ${rule.expected}, got ${describeValue(value)}`);
    return undefined;
  }
  return value as number;
}

function readBoolean(
  object: Record<string, unknown>,
  name: string,
  problems: LineProblems,
): boolean | undefined {
  const value = object[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') {
    problems.add(`${name} must be true or false, got ${describeValue(value)}`);
    return undefined;
  }
  return value;
}

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
