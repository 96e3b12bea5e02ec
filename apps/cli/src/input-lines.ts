/**
 * Parses and validates the prompts file of `seesaw run`: one JSON object a line, either a
 * plain request or an OpenAI batch line (`/v1/completions`). Every problem becomes an error
 * entry for that line (line number + reason) so one bad line never stops a run.
 */
import type { SamplingParams } from '@seesaw/coordinator';
import { OPENAI_NO_OP_FIELDS } from './openai-fields.ts';
import {
  describeValue,
  LineProblems,
  REQUEST_FIELDS,
  type RequestEndpoint,
  readRequestFields,
} from './request-fields.ts';
import type { InputValidationContext } from './request-prompt.ts';

export { DEFAULT_MAX_TOKENS } from './request-fields.ts';
export type { InputValidationContext, PromptEncoder } from './request-prompt.ts';

export interface ParsedRequest {
  /** 1-based line in the input file. */
  lineNumber: number;
  customId: string;
  /** The first (or only) prompt: prompts[0]. */
  promptTokenIds: number[];
  /** Every prompt of the line (OpenAI's list of prompts), each answered by n choices. */
  prompts: number[][];
  /** Each prompt's text as given; null for token ids and chat (echo decodes those). */
  promptTexts: (string | null)[];
  /** Choices per prompt (OpenAI `n`, default 1). */
  n: number;
  /** completions `echo`: the prompt text is put before each choice's text. */
  isEchoed: boolean;
  sampling: SamplingParams;
  isTokenIdsReturned: boolean;
  /** A chat request (messages through the chat template): answered as a chat completion. */
  isChat: boolean;
  /** OpenAI `stop` strings (none: []): the answer is cut before the first one. */
  stopStrings: string[];
}

export type InputErrorCode = 'invalid_json' | 'invalid_request' | 'duplicate_custom_id';

export interface InputLineError {
  lineNumber: number;
  customId: string;
  code: InputErrorCode;
  /** Starts with `line N: `. */
  message: string;
}

export type InputLineResult = { isOk: true; request: ParsedRequest } | { isOk: false; error: InputLineError };

const REQUEST_AND_OPENAI_FIELDS = [...REQUEST_FIELDS, ...Object.keys(OPENAI_NO_OP_FIELDS)];
/** A completions request has a prompt; a chat request has messages instead. */
const FIELDS_OF: Record<RequestEndpoint, string[]> = {
  completions: REQUEST_AND_OPENAI_FIELDS,
  chat: [...REQUEST_AND_OPENAI_FIELDS.filter((name) => name !== 'prompt'), 'messages'],
};
const plainFields = (endpoint: RequestEndpoint) => new Set<string>([...FIELDS_OF[endpoint], 'custom_id']);
const bodyFields = (endpoint: RequestEndpoint) => new Set<string>([...FIELDS_OF[endpoint], 'model']);
const BATCH_FIELDS = new Set<string>(['custom_id', 'method', 'url', 'body']);
const ENDPOINT_OF_URL: Readonly<Record<string, RequestEndpoint>> = {
  '/v1/completions': 'completions',
  '/v1/chat/completions': 'chat',
};

export function defaultCustomId(lineNumber: number): string {
  return `request-${lineNumber}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkUnknownFields(
  object: Record<string, unknown>,
  allowed: Set<string>,
  where: string,
  problems: LineProblems,
): void {
  for (const key of Object.keys(object)) {
    if (!allowed.has(key)) {
      problems.add(`unknown field '${key}'${where} (supported: ${[...allowed].join(', ')})`);
    }
  }
}

function readCustomId(
  object: Record<string, unknown>,
  isRequired: boolean,
  problems: LineProblems,
): string | null {
  const value = object.custom_id;
  if (value === undefined || value === null) {
    if (isRequired) problems.add('custom_id is required in an OpenAI batch line');
    return null;
  }
  if (typeof value !== 'string' || value === '') {
    problems.add(`custom_id must be a non-empty string, got ${describeValue(value)}`);
    return null;
  }
  return value;
}

/** Fields of an OpenAI batch line; returns the request body and its endpoint when usable. */
function readBatchEnvelope(
  object: Record<string, unknown>,
  problems: LineProblems,
): { body: Record<string, unknown>; endpoint: RequestEndpoint } | null {
  checkUnknownFields(object, BATCH_FIELDS, ' in batch line', problems);
  if (object.method !== 'POST') problems.add(`method must be "POST", got ${describeValue(object.method)}`);
  const endpoint = typeof object.url === 'string' ? ENDPOINT_OF_URL[object.url] : undefined;
  if (endpoint === undefined) {
    problems.add(
      `url ${describeValue(object.url)} is not supported: only ${Object.keys(ENDPOINT_OF_URL)
        .map((url) => `"${url}"`)
        .join(' or ')}`,
    );
  }
  if (!isPlainObject(object.body)) {
    problems.add(`body must be an object, got ${describeValue(object.body)}`);
    return null;
  }
  if (object.body.model !== undefined && typeof object.body.model !== 'string') {
    problems.add(`body.model must be a string, got ${describeValue(object.body.model)}`);
  }
  checkUnknownFields(object.body, bodyFields(endpoint ?? 'completions'), ' in body', problems);
  return { body: object.body, endpoint: endpoint ?? 'completions' };
}

/** Parses one non-blank line of the prompts file. */
export function parseInputLine(
  text: string,
  lineNumber: number,
  context: InputValidationContext,
): InputLineResult {
  const fail = (customId: string | null, code: InputErrorCode, reasons: string[]): InputLineResult => ({
    isOk: false,
    error: {
      lineNumber,
      customId: customId ?? defaultCustomId(lineNumber),
      code,
      message: `line ${lineNumber}: ${reasons.join('; ')}`,
    },
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return fail(null, 'invalid_json', [`invalid JSON: ${(error as Error).message}`]);
  }
  if (!isPlainObject(parsed)) {
    return fail(null, 'invalid_request', [`expected a JSON object, got ${describeValue(parsed)}`]);
  }
  const problems = new LineProblems();
  const isBatchLine = 'body' in parsed || 'url' in parsed || 'method' in parsed;
  const customId = readCustomId(parsed, isBatchLine, problems);
  let requestObject: Record<string, unknown> | null = parsed;
  // A plain line is a chat request when it has messages instead of a prompt.
  let endpoint: RequestEndpoint = 'messages' in parsed && !('prompt' in parsed) ? 'chat' : 'completions';
  if (isBatchLine) {
    const envelope = readBatchEnvelope(parsed, problems);
    requestObject = envelope?.body ?? null;
    endpoint = envelope?.endpoint ?? endpoint;
  } else {
    checkUnknownFields(parsed, plainFields(endpoint), '', problems);
  }
  if (requestObject === null) return fail(customId, 'invalid_request', problems.messages);
  const fields = readRequestFields(requestObject, context, problems, endpoint);
  if (problems.messages.length > 0 || fields.promptTokenIds === null) {
    return fail(customId, 'invalid_request', problems.messages);
  }
  return {
    isOk: true,
    request: {
      lineNumber,
      customId: customId ?? defaultCustomId(lineNumber),
      promptTokenIds: fields.promptTokenIds,
      prompts: fields.prompts,
      promptTexts: fields.promptTexts,
      n: fields.n,
      isEchoed: fields.isEchoed,
      sampling: fields.sampling,
      isTokenIdsReturned: fields.isTokenIdsReturned,
      isChat: endpoint === 'chat',
      stopStrings: fields.stopStrings,
    },
  };
}

/**
 * Parses a whole prompts file in line order. Blank lines are skipped (they still count for
 * line numbers). A custom_id already used by an earlier line, valid or not, makes the later
 * line an error so that every custom_id names at most one record in the output.
 */
export function parseInputFile(content: string, context: InputValidationContext): InputLineResult[] {
  const results: InputLineResult[] = [];
  const seenCustomIds = new Map<string, number>();
  const lines = content.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const text = lines[index].replace(/\r$/, '');
    if (text.trim() === '') continue;
    const lineNumber = index + 1;
    const result = parseInputLine(text, lineNumber, context);
    const customId = result.isOk ? result.request.customId : result.error.customId;
    const firstLine = seenCustomIds.get(customId);
    if (firstLine !== undefined) {
      results.push({
        isOk: false,
        error: {
          lineNumber,
          customId,
          code: 'duplicate_custom_id',
          message: `line ${lineNumber}: duplicate custom_id '${customId}' (first used on line ${firstLine})`,
        },
      });
      continue;
    }
    seenCustomIds.set(customId, lineNumber);
    results.push(result);
  }
  return results;
}
