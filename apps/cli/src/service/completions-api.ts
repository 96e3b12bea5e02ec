/**
 * Single requests: `POST /v1/completions` (and `/v1/chat/completions`, as far as the input
 * line parser accepts chat bodies). The body is checked by the same parser as a batch line, so
 * both accept the same fields, and the answer is the body of the same output record. Stop
 * strings end generation early, as in `seesaw run`.
 *
 * With `stream: true` the answer is server-sent events, token by token: each choice's engine
 * request reports its outputs after every step (EngineRequest.onProgress) and TextDeltas turns
 * them into text pieces that never split a character or run into a stop string; when the
 * request ends, each choice gets the rest of its record's text and its finish reason, so the
 * pieces concatenated are exactly the non-streamed text. `stream_options.include_usage` adds a
 * last chunk with no choices and the usage. Log probabilities are not streamed.
 */
import type { ServerResponse } from 'node:http';
import type { SeesawTokenizer } from '@seesaw/model';
import type { ChatPrompter } from '../chat-template.ts';
import { outputRecordOfChoices } from '../commands/output-record.ts';
import { parseInputLine } from '../input-lines.ts';
import { numChoicesOf, submitChoices } from '../request-choices.ts';
import { stopWhenOfRequest } from '../stop-strings.ts';
import { CompletionEvents } from './completion-events.ts';
import { LateRejectionError } from './engine-loop.ts';
import { ANY_ENGINE, type EngineProvider } from './engine-provider.ts';
import { ApiError, sendJson } from './http-errors.ts';
import { newId } from './state-store.ts';
import { TextDeltas } from './text-deltas.ts';

export interface CompletionsDeps {
  engines: EngineProvider;
  tokenizer: SeesawTokenizer | null;
  /** Renders chat requests (the model's chat template); null when the model has none. */
  chat?: ChatPrompter | null;
}

/** Fields the HTTP layer honours itself; the line parser never sees them. */
const TRANSPORT_FIELDS = ['stream', 'stream_options'];

/** Reads `stream_options` ({include_usage?: boolean}, only with stream: true). */
function readIncludeUsage(body: Record<string, unknown>): boolean {
  const options = body.stream_options;
  if (options === undefined || options === null) return false;
  const isObject = typeof options === 'object' && !Array.isArray(options);
  const entries = isObject ? Object.entries(options) : [];
  if (!isObject || entries.some(([key, value]) => key !== 'include_usage' || typeof value !== 'boolean')) {
    throw new ApiError(400, 'stream_options must be {"include_usage": true | false}', null, 'stream_options');
  }
  if (body.stream !== true)
    throw new ApiError(400, 'stream_options needs stream: true', null, 'stream_options');
  return (options as { include_usage?: boolean }).include_usage === true;
}

export async function handleCompletion(
  path: string,
  body: Record<string, unknown>,
  response: ServerResponse,
  deps: CompletionsDeps,
): Promise<void> {
  const { stream } = body;
  if (stream !== undefined && typeof stream !== 'boolean') {
    throw new ApiError(400, `stream must be a boolean, got ${JSON.stringify(stream)}`, null, 'stream');
  }
  const includeUsage = readIncludeUsage(body);
  const requestBody = Object.fromEntries(
    Object.entries(body).filter(([key]) => !TRANSPORT_FIELDS.includes(key)),
  );
  const customId = newId('cmpl-');
  const line = JSON.stringify({ custom_id: customId, method: 'POST', url: path, body: requestBody });
  const { tokenizer } = deps;
  const { session, engineLoop } = await deps.engines.acquire(ANY_ENGINE);
  const parsed = parseInputLine(line, 1, {
    vocabSize: session.config.vocabSize,
    maxModelLen: session.config.maxPositionEmbeddings,
    tokenizer,
    chat: deps.chat,
  });
  if (!parsed.isOk) throw new ApiError(400, parsed.error.message.replace(/^line 1: /, ''), parsed.error.code);
  const request = parsed.request;
  const events =
    stream === true ? new CompletionEvents(response, request.isChat, customId, session.modelName) : null;
  const deltas = Array.from({ length: numChoicesOf(request) }, (_, index) => {
    const promptIndex = Math.floor(index / request.n);
    const echoed = request.isEchoed
      ? (request.promptTexts[promptIndex] ?? tokenizer?.decode(request.prompts[promptIndex]) ?? '')
      : '';
    return tokenizer === null
      ? null
      : new TextDeltas((ids) => tokenizer.decode(ids), request.stopStrings, echoed);
  });
  // One engine request per choice (n, lists of prompts): request-choices.ts.
  const submission = submitChoices(request, customId, (choice) => engineLoop.submit(choice), {
    stopWhen: stopWhenOfRequest(request, tokenizer),
    ...(events === null
      ? {}
      : {
          onProgress: (index: number, ids: readonly number[]) => {
            const piece = deltas[index]?.next(ids) ?? '';
            if (piece !== '') events.sendText(index, piece);
          },
        }),
  });
  if ('rejection' in submission) throw new ApiError(400, submission.rejection, 'request_rejected');
  let outputs: Awaited<typeof submission.outputs>;
  try {
    outputs = await submission.outputs;
  } catch (error) {
    const apiError =
      error instanceof LateRejectionError ? new ApiError(400, error.message, 'request_rejected') : error;
    // Once the event stream has begun, its status is sent: the error goes as the last event.
    if (events?.hasStarted) return events.fail(apiError as Error);
    throw apiError;
  }
  const record = outputRecordOfChoices(
    outputs,
    request,
    tokenizer,
    session.modelName,
    session.config.eosTokenIds,
  );
  if (record.response === null) {
    const error = new ApiError(500, record.error.message, record.error.code);
    if (events?.hasStarted) return events.fail(error);
    throw error;
  }
  const completion = record.response.body;
  if (events === null) return sendJson(response, 200, completion);
  for (const choice of completion.choices) {
    const text = choice.message?.content ?? choice.text ?? '';
    const piece = deltas[choice.index]?.finish(text) ?? text;
    if (piece !== '') events.sendText(choice.index, piece);
    events.sendFinish(choice.index, choice.finish_reason);
  }
  events.end(includeUsage ? completion.usage : null);
}

/** True for the routes handleCompletion answers. */
export function isCompletionRoute(method: string, path: string): boolean {
  return method === 'POST' && (path === '/v1/completions' || path === '/v1/chat/completions');
}
