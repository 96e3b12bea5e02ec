/**
 * Single requests: `POST /v1/completions` (and `/v1/chat/completions`, as far as the input
 * line parser accepts chat bodies). The body is checked by the same parser as a batch line, so
 * both accept the same fields, and the answer is the body of the same output record. With
 * `stream: true` the answer is server-sent events: the engine reports a request when it
 * finishes, so the text arrives as one chunk, then a chunk with the finish reason, then [DONE].
 */
import type { ServerResponse } from 'node:http';
import type { SeesawTokenizer } from '@seesaw/model';
import type { ChatPrompter } from '../chat-template.ts';
import { outputRecordOfChoices } from '../commands/run.ts';
import { parseInputLine } from '../input-lines.ts';
import { submitChoices } from '../request-choices.ts';
import { LateRejectionError } from './engine-loop.ts';
import { ANY_ENGINE, type EngineProvider } from './engine-provider.ts';
import { ApiError, sendJson } from './http-errors.ts';
import { newId } from './state-store.ts';

export interface CompletionsDeps {
  engines: EngineProvider;
  tokenizer: SeesawTokenizer | null;
  /** Renders chat requests (the model's chat template); null when the model has none. */
  chat?: ChatPrompter | null;
}

/** Fields the HTTP layer honours itself; the line parser never sees them. */
const TRANSPORT_FIELDS = ['stream', 'stream_options'];

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
  // One engine request per choice (n, lists of prompts): request-choices.ts.
  const submission = submitChoices(request, customId, (choice) => engineLoop.submit(choice));
  if ('rejection' in submission) throw new ApiError(400, submission.rejection, 'request_rejected');
  const outputs = await submission.outputs.catch((error: Error) => {
    if (error instanceof LateRejectionError) throw new ApiError(400, error.message, 'request_rejected');
    throw error;
  });
  const record = outputRecordOfChoices(
    outputs,
    request,
    tokenizer,
    session.modelName,
    session.config.eosTokenIds,
  );
  if (record.response === null) throw new ApiError(500, record.error.message, record.error.code);
  const completion = record.response.body;
  if (stream !== true) return sendJson(response, 200, completion);

  response.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  const send = (data: unknown) => response.write(`data: ${JSON.stringify(data)}\n\n`);
  const { choices, usage: _usage, ...head } = completion;
  for (const choice of choices) {
    if (choice.message !== undefined) {
      // Chat streams as chat.completion.chunk objects carrying deltas of the assistant message.
      const chunk = { ...head, object: 'chat.completion.chunk' };
      const delta = { role: 'assistant', content: choice.message.content };
      send({ ...chunk, choices: [{ index: choice.index, delta, finish_reason: null, logprobs: null }] });
      send({ ...chunk, choices: [{ index: choice.index, delta: {}, finish_reason: choice.finish_reason }] });
      continue;
    }
    send({ ...head, choices: [{ ...choice, finish_reason: null }] });
    send({
      ...head,
      choices: [{ index: choice.index, text: '', finish_reason: choice.finish_reason, logprobs: null }],
    });
  }
  response.end('data: [DONE]\n\n');
}

/** True for the routes handleCompletion answers. */
export function isCompletionRoute(method: string, path: string): boolean {
  return method === 'POST' && (path === '/v1/completions' || path === '/v1/chat/completions');
}
