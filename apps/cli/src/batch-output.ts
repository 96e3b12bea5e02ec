/**
 * Result records in the OpenAI batch output format, one JSON object a line:
 * success records carry a `text_completion` body (`chat.completion` for chat requests), error
 * records `response: null` and
 * `error: {code, message}`.
 */
import { randomBytes } from 'node:crypto';
import type { ChatLogprobs, CompletionLogprobs } from './logprobs-output.ts';

export interface CompletionChoice {
  index: number;
  text: string;
  message?: undefined;
  finish_reason: 'stop' | 'length';
  logprobs: CompletionLogprobs | null;
  token_ids?: number[];
}

/** A chat completion's choice: the answer as the assistant's message. */
export interface ChatChoice {
  index: number;
  message: { role: 'assistant'; content: string };
  text?: undefined;
  finish_reason: 'stop' | 'length';
  logprobs: ChatLogprobs | null;
  token_ids?: number[];
}

export interface CompletionBody {
  id: string;
  object: 'text_completion' | 'chat.completion';
  created: number;
  model: string;
  choices: CompletionChoice[] | ChatChoice[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  prompt_token_ids?: number[];
}

export interface SuccessRecord {
  id: string;
  custom_id: string;
  response: { status_code: 200; request_id: string; body: CompletionBody };
  error: null;
}

export interface ErrorRecord {
  id: string;
  custom_id: string;
  response: null;
  error: { code: string; message: string };
}

export type BatchOutputRecord = SuccessRecord | ErrorRecord;

/** What one choice answered. */
export interface ChoiceResult {
  outputTokenIds: number[];
  /** Decoded output, or '' when the model has no tokenizer. */
  text: string;
  finishReason: 'stop' | 'length';
  /** The choice's log probabilities, in the shape of its API (completions or chat). */
  logprobs?: CompletionLogprobs | ChatLogprobs;
}

/** A completed request: its first choice's fields, and any more choices (n > 1, lists of prompts). */
export interface CompletionResult extends ChoiceResult {
  customId: string;
  modelName: string;
  promptTokenIds: number[];
  /** Choices 1.. in OpenAI's order (prompt by prompt, n each). */
  moreChoices?: ChoiceResult[];
  /** Prompt tokens of every prompt of the request, for usage; default promptTokenIds' count. */
  numPromptTokens?: number;
  /** Add token_ids / prompt_token_ids (always on without a tokenizer, since text is then empty). */
  isTokenIdsReturned: boolean;
  /** Unix time in seconds. */
  createdSeconds: number;
  /** The request's hash (requestHash), so resume can tell a changed request; random when absent. */
  requestId?: string;
  /** Answer as a chat completion (the request came as chat messages). */
  isChat?: boolean;
}

function randomId(prefix: string): string {
  return `${prefix}${randomBytes(12).toString('hex')}`;
}

function choiceOf(choice: ChoiceResult, index: number, isChat: boolean, isTokenIdsReturned: boolean) {
  const shaped: CompletionChoice | ChatChoice = isChat
    ? {
        index,
        message: { role: 'assistant', content: choice.text },
        finish_reason: choice.finishReason,
        logprobs: (choice.logprobs as ChatLogprobs | undefined) ?? null,
      }
    : {
        index,
        text: choice.text,
        finish_reason: choice.finishReason,
        logprobs: (choice.logprobs as CompletionLogprobs | undefined) ?? null,
      };
  if (isTokenIdsReturned) shaped.token_ids = [...choice.outputTokenIds];
  return shaped;
}

export function successRecord(result: CompletionResult): SuccessRecord {
  const choices = [result, ...(result.moreChoices ?? [])];
  const numPromptTokens = result.numPromptTokens ?? result.promptTokenIds.length;
  const numOutputTokens = choices.reduce((sum, choice) => sum + choice.outputTokenIds.length, 0);
  const body: CompletionBody = {
    id: randomId(result.isChat ? 'chatcmpl-' : 'cmpl-'),
    object: result.isChat ? 'chat.completion' : 'text_completion',
    created: result.createdSeconds,
    model: result.modelName,
    choices: choices.map((choice, index) =>
      choiceOf(choice, index, result.isChat === true, result.isTokenIdsReturned),
    ) as CompletionChoice[] | ChatChoice[],
    usage: {
      prompt_tokens: numPromptTokens,
      completion_tokens: numOutputTokens,
      total_tokens: numPromptTokens + numOutputTokens,
    },
  };
  if (result.isTokenIdsReturned) body.prompt_token_ids = [...result.promptTokenIds];
  return {
    id: randomId('batch_req_'),
    custom_id: result.customId,
    response: { status_code: 200, request_id: result.requestId ?? randomId('req_'), body },
    error: null,
  };
}

export function errorRecord(customId: string, code: string, message: string): ErrorRecord {
  return { id: randomId('batch_req_'), custom_id: customId, response: null, error: { code, message } };
}

/** One output line, newline included. */
export function formatRecordLine(record: BatchOutputRecord): string {
  return `${JSON.stringify(record)}\n`;
}

/** True for a parsed line that is a completed (status 200) record with a custom_id. */
export function isSuccessRecord(value: unknown): value is SuccessRecord {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  const response = record.response as Record<string, unknown> | null | undefined;
  return (
    typeof record.custom_id === 'string' &&
    record.error === null &&
    typeof response === 'object' &&
    response !== null &&
    response.status_code === 200 &&
    // A record without a completion body is not completed work.
    typeof response.body === 'object' &&
    response.body !== null &&
    Array.isArray((response.body as Record<string, unknown>).choices)
  );
}
