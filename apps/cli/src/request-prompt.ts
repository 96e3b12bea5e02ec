/**
 * The prompt of a request: OpenAI's `prompt` (text, token ids, or a list of either) or a chat
 * request's `messages` rendered by the model's chat template, checked against the vocabulary and
 * the model's maximum length. Problems are collected, not thrown (line-problems.ts).
 */
import { type ChatPrompter, readChatMessages } from './chat-template.ts';
import { describeValue, type LineProblems } from './line-problems.ts';

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

/** Most choices one request line may ask for (prompts x n), as OpenAI caps n. */
export const MAX_CHOICES = 128;

export function isTokenId(value: unknown, vocabSize: number): boolean {
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
export function readPrompts(
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
export function readChatPrompt(
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
