/**
 * The OpenAI-compatible HTTP API of `seesaw serve` on node:http: Files, Batches, Models and
 * /metrics, every route behind `Authorization: Bearer <api key>`.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createListenerServer, type TlsServerCredentials } from '@seesaw/protocol';
import type { BatchRunner } from './batch-runner.ts';
import { COMPLETION_WINDOWS, expiresAtSeconds } from './completion-window.ts';
import { type CompletionsDeps, handleCompletion, isCompletionRoute } from './completions-api.ts';
import { EngineChoiceError, readEngineChoice } from './engine-choice.ts';
import { checkBearer, digest } from './http-auth.ts';
import { readForm, readJson } from './http-body.ts';
import { ApiError, sendError, sendJson } from './http-errors.ts';
import { batchObject, fileObject, modelObject } from './openai-objects.ts';
import { answerPlainHttpOnTls } from './plain-http-on-tls.ts';
import type { StateStore } from './state-store.ts';

export interface HttpApiOptions {
  /** Serve HTTPS with this certificate (the coordinator's --tls-cert/--tls-key); plain HTTP without. */
  tls?: TlsServerCredentials;
  store: StateStore;
  runner: BatchRunner;
  modelName: string;
  /** The bearer tokens accepted (one a line of --api-key-file). */
  apiKeys: string[];
  startedSeconds: number;
  /** Every batch's completion window instead of the one it names (--batch-window-override). */
  batchWindowOverrideMs?: number;
  /** Whether a batch may ask for a Seesaw pair in its metadata (local device workers, or a cluster with host KV tiers). */
  supportsSeesawPairs: boolean;
  /** The engine single requests run on. */
  completions: CompletionsDeps;
}

/** The batch endpoints a batch may name; each line's url is checked by the line parser. */
export const BATCH_ENDPOINTS = ['/v1/completions', '/v1/chat/completions'];

export class HttpApi {
  private readonly apiKeyDigests: Buffer[];
  readonly server: Server;

  constructor(private readonly options: HttpApiOptions) {
    if (options.apiKeys.length === 0) throw new Error('the service needs at least one API key');
    this.apiKeyDigests = options.apiKeys.map(digest);
    this.server = createListenerServer(options.tls);
    if (options.tls) answerPlainHttpOnTls(this.server);
    this.server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      this.handle(request, response).catch((error: unknown) => {
        const apiError =
          error instanceof ApiError
            ? error
            : new ApiError(500, error instanceof Error ? error.message : String(error));
        if (!response.headersSent) sendError(response, apiError);
        else response.destroy();
      });
    });
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    checkBearer(request, this.apiKeyDigests);
    const method = request.method ?? 'GET';
    if (isCompletionRoute(method, url.pathname)) {
      return handleCompletion(url.pathname, await readJson(request), response, this.options.completions);
    }
    const { route, id } = routeOf(method, url.pathname);
    switch (route) {
      case 'GET /metrics':
        return this.sendMetrics(response);
      case 'GET /v1/models':
        return sendJson(response, 200, {
          object: 'list',
          data: [modelObject(this.options.modelName, this.options.startedSeconds)],
        });
      case 'POST /v1/files':
        return this.uploadFile(request, response);
      case 'GET /v1/files':
        return sendJson(response, 200, {
          object: 'list',
          data: this.options.store.listFiles().map(fileObject),
        });
      case 'GET /v1/files/:id':
        return sendJson(response, 200, fileObject(this.mustFile(id)));
      case 'GET /v1/files/:id/content':
        return this.sendFileContent(response, id);
      case 'DELETE /v1/files/:id':
        this.mustFile(id);
        this.options.store.deleteFile(id);
        return sendJson(response, 200, { id, object: 'file', deleted: true });
      case 'POST /v1/batches':
        return this.createBatch(request, response);
      case 'GET /v1/batches':
        return this.listBatches(response, url.searchParams);
      case 'GET /v1/batches/:id':
        return sendJson(response, 200, this.batchObject(id));
      case 'POST /v1/batches/:id/cancel':
        this.mustBatch(id);
        this.options.runner.cancel(id);
        return sendJson(response, 200, this.batchObject(id));
      default:
        throw new ApiError(404, `no route ${method} ${url.pathname}`, 'unknown_url');
    }
  }

  private mustFile(id: string) {
    const file = this.options.store.getFile(id);
    if (file === null) throw new ApiError(404, `no file '${id}'`, 'file_not_found');
    return file;
  }

  private mustBatch(id: string) {
    const batch = this.options.store.getBatch(id);
    if (batch === null) throw new ApiError(404, `no batch '${id}'`, 'batch_not_found');
    return batch;
  }

  private batchObject(id: string) {
    return batchObject(this.mustBatch(id), this.options.store.resultCounts(id));
  }

  private async uploadFile(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const form = await readForm(request);
    const purpose = form.get('purpose');
    if (purpose !== 'batch') {
      throw new ApiError(
        400,
        `purpose must be 'batch', got ${JSON.stringify(purpose)}`,
        'invalid_purpose',
        'purpose',
      );
    }
    const file = form.get('file');
    if (file === null || typeof file === 'string') {
      throw new ApiError(
        400,
        "the upload needs a 'file' part with the JSONL content",
        'missing_file',
        'file',
      );
    }
    const content = Buffer.from(await file.arrayBuffer());
    const row = this.options.store.addFile(file.name || 'upload.jsonl', purpose, content);
    sendJson(response, 200, fileObject(row));
  }

  private sendFileContent(response: ServerResponse, id: string): void {
    this.mustFile(id);
    const content = this.options.store.fileContent(id) ?? Buffer.alloc(0);
    response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': content.length });
    response.end(content);
  }

  private async createBatch(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = await readJson(request);
    const known = new Set(['input_file_id', 'endpoint', 'completion_window', 'metadata']);
    for (const key of Object.keys(body)) {
      if (!known.has(key))
        throw new ApiError(400, `unknown field '${key}' (supported: ${[...known].join(', ')})`, null, key);
    }
    const { input_file_id: inputFileId, endpoint, completion_window: window, metadata } = body;
    if (typeof inputFileId !== 'string')
      throw new ApiError(400, 'input_file_id must be a file id', null, 'input_file_id');
    const file = this.options.store.getFile(inputFileId);
    if (file === null) throw new ApiError(400, `no file '${inputFileId}'`, 'file_not_found', 'input_file_id');
    if (file.purpose !== 'batch')
      throw new ApiError(
        400,
        `file '${inputFileId}' has purpose '${file.purpose}', not 'batch'`,
        null,
        'input_file_id',
      );
    if (typeof endpoint !== 'string' || !BATCH_ENDPOINTS.includes(endpoint)) {
      throw new ApiError(
        400,
        `endpoint must be one of ${BATCH_ENDPOINTS.join(', ')}, got ${JSON.stringify(endpoint)}`,
        null,
        'endpoint',
      );
    }
    if (typeof window !== 'string' || !Object.hasOwn(COMPLETION_WINDOWS, window)) {
      throw new ApiError(
        400,
        `completion_window must be one of ${Object.keys(COMPLETION_WINDOWS).join(', ')}, got ${JSON.stringify(window)}`,
        null,
        'completion_window',
      );
    }
    const windowMs = this.options.batchWindowOverrideMs ?? COMPLETION_WINDOWS[window];
    if (metadata !== undefined && metadata !== null && !isStringRecord(metadata)) {
      throw new ApiError(400, 'metadata must be an object of string values', null, 'metadata');
    }
    try {
      readEngineChoice(
        (metadata as Record<string, string> | undefined) ?? null,
        this.options.supportsSeesawPairs,
      );
    } catch (error) {
      if (!(error instanceof EngineChoiceError)) throw error;
      throw new ApiError(400, error.message, 'invalid_metadata', `metadata.${error.key}`);
    }
    const batch = this.options.store.addBatch({
      endpoint,
      inputFileId,
      completionWindow: window,
      metadata: (metadata as Record<string, string> | undefined) ?? null,
      expiresAt: expiresAtSeconds(windowMs),
    });
    this.options.runner.enqueue(batch.id);
    sendJson(response, 200, this.batchObject(batch.id));
  }

  private listBatches(response: ServerResponse, query: URLSearchParams): void {
    const limitText = query.get('limit') ?? '20';
    const limit = Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      throw new ApiError(400, `limit must be an integer in 1..100, got '${limitText}'`, null, 'limit');
    }
    const after = query.get('after');
    if (after !== null) this.mustBatch(after);
    const { batches, hasMore } = this.options.store.listBatches(after, limit);
    const data = batches.map((batch) => batchObject(batch, this.options.store.resultCounts(batch.id)));
    sendJson(response, 200, {
      object: 'list',
      data,
      first_id: data[0]?.id ?? null,
      last_id: data[data.length - 1]?.id ?? null,
      has_more: hasMore,
    });
  }

  private sendMetrics(response: ServerResponse): void {
    const gauges = this.options.runner.gauges();
    const current = this.options.completions.engines.current;
    const text = [
      '# HELP seesaw_batches_queued Batches waiting for the engine.',
      '# TYPE seesaw_batches_queued gauge',
      `seesaw_batches_queued ${gauges.numQueuedBatches}`,
      '# HELP seesaw_batches_running Batches on the engine now.',
      '# TYPE seesaw_batches_running gauge',
      `seesaw_batches_running ${gauges.numRunningBatches}`,
      '# HELP seesaw_batch_requests_in_flight Requests of the running batch in the engine.',
      '# TYPE seesaw_batch_requests_in_flight gauge',
      `seesaw_batch_requests_in_flight ${gauges.numRequestsInFlight}`,
      '# HELP seesaw_engine_requests_in_flight Requests in the engine now (batch and single).',
      '# TYPE seesaw_engine_requests_in_flight gauge',
      `seesaw_engine_requests_in_flight ${current?.engineLoop.numInFlight ?? 0}`,
      '# HELP seesaw_engine_output_tokens_total Tokens the open engine generated (early stops show here).',
      '# TYPE seesaw_engine_output_tokens_total counter',
      `seesaw_engine_output_tokens_total ${current?.session.engine.stats.numOutputTokens ?? 0}`,
      '',
    ].join('\n');
    response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    response.end(text);
  }
}

/**
 * The route a request names, its object id replaced by `:id`: `/v1/files/file-1/content` is
 * `GET /v1/files/:id/content` with id `file-1`. The id is always the third path segment.
 */
export function routeOf(method: string, pathname: string): { route: string; id: string } {
  const parts = pathname.split('/').filter((part) => part !== '');
  const pattern = parts.map((part, index) => (index === 2 ? ':id' : part));
  return { route: `${method} /${pattern.join('/')}`, id: parts[2] ?? '' };
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((entry) => typeof entry === 'string')
  );
}
