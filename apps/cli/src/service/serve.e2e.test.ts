/**
 * `seesaw serve` as a real child process driven by the official `openai` client: a batch
 * uploaded, polled to completed and downloaded gives every custom_id once with the token ids
 * `seesaw run` gives on the same lines; cancel; a wrong key refused; and a server killed with
 * SIGKILL mid-batch and restarted on the same --state-dir completes the batch exactly once.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { findEngineUnavailableReason, runSeesaw } from '../../test/e2e-test-support.ts';
import { type ServeProcess, startServe } from '../../test/serve-test-support.ts';
import type { BatchOutputRecord, SuccessRecord } from '../batch-output.ts';

const engineUnavailableReason = await findEngineUnavailableReason();

const CHAT_TEMPLATE =
  '{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}';

/** Seeded sampling lines (so two runs give the same tokens), asking for the token ids back. */
function batchLines(count: number, maxTokens: number): string {
  const lines: string[] = [];
  for (let index = 0; index < count; index++) {
    const body = {
      model: 'tiny',
      prompt: `request ${index} says hello`,
      max_tokens: maxTokens,
      temperature: 0.8,
      seed: 1000 + index,
      ignore_eos: true,
      return_token_ids: true,
    };
    lines.push(JSON.stringify({ custom_id: `req-${index}`, method: 'POST', url: '/v1/completions', body }));
  }
  return `${lines.join('\n')}\n`;
}

function parseRecords(text: string): BatchOutputRecord[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as BatchOutputRecord);
}

/** custom_id -> output token ids; fails on a custom_id seen twice or an error record. */
function tokenIdsByCustomId(records: BatchOutputRecord[]): Map<string, number[]> {
  const byId = new Map<string, number[]>();
  for (const record of records) {
    expect(byId.has(record.custom_id), `custom_id ${record.custom_id} twice`).toBe(false);
    expect(record.error).toBeNull();
    byId.set(record.custom_id, (record as SuccessRecord).response.body.choices[0].token_ids ?? []);
  }
  return byId;
}

async function waitForBatch(
  client: OpenAI,
  batchId: string,
  isDone: (batch: OpenAI.Batches.Batch) => boolean,
): Promise<OpenAI.Batches.Batch> {
  for (;;) {
    const batch = await client.batches.retrieve(batchId);
    if (isDone(batch)) return batch;
    if (batch.status === 'failed') throw new Error(`batch failed: ${JSON.stringify(batch.errors)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const FINAL = new Set(['completed', 'failed', 'cancelled', 'expired']);

describe.skipIf(engineUnavailableReason !== null)('seesaw serve with the openai client', () => {
  let dir: string;
  let modelDir: string;
  let keyFile: string;
  let apiKey: string;
  let server: ServeProcess | null = null;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-serve-'));
    modelDir = join(dir, 'tiny');
    keyFile = join(dir, 'api-key');
    const generated = await runSeesaw(['gen-model', '--shape', 'tiny', '--out', modelDir]);
    expect(generated.status, generated.stderr).toBe(0);
    // A chat template, so /v1/chat/completions has something to render.
    const configPath = join(modelDir, 'tokenizer_config.json');
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    writeFileSync(configPath, JSON.stringify({ ...config, chat_template: CHAT_TEMPLATE }));
    const token = await runSeesaw(['token', '--out', keyFile]);
    expect(token.status, token.stderr).toBe(0);
    apiKey = readFileSync(keyFile, 'utf8').trim();
  }, 120_000);

  afterEach(async () => {
    if (server !== null && server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    server = null;
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const serve = async (stateDir: string) => {
    server = await startServe([
      '--model',
      modelDir,
      '--state-dir',
      stateDir,
      '--api-key-file',
      keyFile,
      '--threads',
      '1',
    ]);
    return new OpenAI({ apiKey, baseURL: server.baseUrl, maxRetries: 0 });
  };

  /** `seesaw run` on the same lines: the reference token ids. */
  const runReference = async (name: string, content: string) => {
    const input = join(dir, `${name}.jsonl`);
    const output = join(dir, `${name}-run-output.jsonl`);
    writeFileSync(input, content);
    const result = await runSeesaw([
      'run',
      '--model',
      modelDir,
      '--input',
      input,
      '--output',
      output,
      '--threads',
      '1',
    ]);
    expect(result.status, result.stderr).toBe(0);
    return tokenIdsByCustomId(parseRecords(readFileSync(output, 'utf8')));
  };

  it('upload, batch, poll to completed, download: every custom_id once, the same tokens as run', async () => {
    const content = batchLines(12, 8);
    const reference = await runReference('basic', content);
    const client = await serve(join(dir, 'state-basic'));
    expect((await client.models.list()).data.map((model) => model.id)).toEqual(['tiny']);

    const file = await client.files.create({
      file: await toFile(Buffer.from(content), 'basic.jsonl'),
      purpose: 'batch',
    });
    expect(file.bytes).toBe(Buffer.byteLength(content));
    expect(await (await client.files.content(file.id)).text()).toBe(content);
    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/completions',
      completion_window: '24h',
      metadata: { purpose: 'test' },
    });
    expect(['validating', 'in_progress', 'finalizing', 'completed']).toContain(created.status);
    const batch = await waitForBatch(client, created.id, (b) => FINAL.has(b.status));
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: 12, completed: 12, failed: 0 });
    expect(batch.in_progress_at).not.toBeNull();
    expect(batch.finalizing_at).not.toBeNull();
    expect(batch.error_file_id).toBeNull();
    expect(batch.metadata).toEqual({ purpose: 'test' });
    const output = parseRecords(await (await client.files.content(batch.output_file_id as string)).text());
    expect(tokenIdsByCustomId(output)).toEqual(reference);

    const listed = await client.batches.list({ limit: 1 });
    expect(listed.data.map((b) => b.id)).toEqual([batch.id]);
    expect(await client.files.delete(file.id)).toMatchObject({ id: file.id, deleted: true });
    await expect(client.files.retrieve(file.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  }, 180_000);

  it('single completions, streamed and not, give the tokens seesaw run gives; /metrics has the gauges', async () => {
    const line = batchLines(1, 12);
    const reference = await runReference('single', line);
    const client = await serve(join(dir, 'state-single'));
    // Fields beyond OpenAI's typed ones pass through the client to the server as given.
    const params = { ...JSON.parse(line).body, stream: false } as OpenAI.CompletionCreateParamsNonStreaming;
    const completion = await client.completions.create(params);
    const choice = completion.choices[0] as OpenAI.CompletionChoice & { token_ids?: number[] };
    expect(choice.token_ids).toEqual(reference.get('req-0'));
    expect(completion.usage?.completion_tokens).toBe(12);

    const stream = await client.completions.create({ ...params, stream: true });
    let streamedText = '';
    const finishReasons: (string | null)[] = [];
    for await (const chunk of stream) {
      streamedText += chunk.choices[0].text;
      finishReasons.push(chunk.choices[0].finish_reason);
    }
    expect(streamedText).toBe(choice.text);
    expect(finishReasons[finishReasons.length - 1]).toBe('length');

    await expect(client.completions.create({ ...params, max_tokens: -1 })).rejects.toBeInstanceOf(
      OpenAI.BadRequestError,
    );
    const metrics = await fetch(new URL('../metrics', `${server?.baseUrl}/`), {
      headers: { authorization: `Bearer ${apiKey}` },
    });
    const metricsText = await metrics.text();
    expect(metricsText).toContain('seesaw_batches_queued 0\n');
    expect(metricsText).toContain('seesaw_engine_requests_in_flight 0\n');
  }, 120_000);

  it('chat completions, streamed and not, answer with the same assistant message', async () => {
    const client = await serve(join(dir, 'state-chat'));
    const params = {
      model: 'tiny',
      messages: [{ role: 'user' as const, content: 'Once upon a time' }],
      max_tokens: 8,
      temperature: 0,
    };
    const completion = await client.chat.completions.create(params);
    expect(completion.object).toBe('chat.completion');
    const message = completion.choices[0].message;
    expect(message.role).toBe('assistant');
    expect(completion.usage?.completion_tokens).toBeGreaterThan(0);
    const stream = await client.chat.completions.create({ ...params, stream: true });
    let streamed = '';
    const finishReasons: (string | null)[] = [];
    for await (const chunk of stream) {
      expect(chunk.object).toBe('chat.completion.chunk');
      streamed += chunk.choices[0].delta.content ?? '';
      finishReasons.push(chunk.choices[0].finish_reason);
    }
    expect(streamed).toBe(message.content);
    expect(finishReasons[finishReasons.length - 1]).toBe(completion.choices[0].finish_reason);
    await expect(
      client.chat.completions.create({ ...params, messages: [] as OpenAI.ChatCompletionMessageParam[] }),
    ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
  });

  it('lines the parser refuses go to the error file with their code; the rest completes', async () => {
    const client = await serve(join(dir, 'state-errors'));
    const content = [
      batchLines(1, 4).trim(),
      '{"custom_id": "broken", "method": "POST", ',
      JSON.stringify({
        custom_id: 'bad-field',
        method: 'POST',
        url: '/v1/completions',
        body: { prompt: 'x', max_tokens: 'many' },
      }),
    ].join('\n');
    const file = await client.files.create({
      file: await toFile(Buffer.from(content), 'mixed.jsonl'),
      purpose: 'batch',
    });
    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/completions',
      completion_window: '24h',
    });
    const batch = await waitForBatch(client, created.id, (b) => FINAL.has(b.status));
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: 3, completed: 1, failed: 2 });
    const errors = parseRecords(await (await client.files.content(batch.error_file_id as string)).text());
    expect(errors.map((record) => [record.custom_id, record.error?.code])).toEqual([
      ['request-2', 'invalid_json'],
      ['bad-field', 'invalid_request'],
    ]);
    await expect(
      client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/embeddings' as '/v1/completions',
        completion_window: '24h',
      }),
    ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
  }, 120_000);

  it('refuses a wrong bearer token with 401', async () => {
    await serve(join(dir, 'state-auth'));
    const wrong = new OpenAI({ apiKey: `${apiKey}x`, baseURL: server?.baseUrl, maxRetries: 0 });
    await expect(wrong.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    await expect(wrong.batches.list()).rejects.toMatchObject({ status: 401, code: 'invalid_api_key' });
  }, 120_000);

  it('cancels a running batch and a queued one; the queue keeps order', async () => {
    const client = await serve(join(dir, 'state-cancel'));
    const upload = async (content: string) =>
      client.files.create({ file: await toFile(Buffer.from(content), 'lines.jsonl'), purpose: 'batch' });
    const big = await upload(batchLines(400, 48));
    const running = await client.batches.create({
      input_file_id: big.id,
      endpoint: '/v1/completions',
      completion_window: '24h',
    });
    const queued = await client.batches.create({
      input_file_id: big.id,
      endpoint: '/v1/completions',
      completion_window: '24h',
    });
    const small = await upload(batchLines(3, 4));
    const after = await client.batches.create({
      input_file_id: small.id,
      endpoint: '/v1/completions',
      completion_window: '24h',
    });

    await waitForBatch(client, running.id, (b) => b.request_counts?.completed !== 0);
    expect((await client.batches.cancel(queued.id)).status).toBe('cancelling');
    expect((await client.batches.cancel(running.id)).status).toBe('cancelling');
    const cancelled = await waitForBatch(client, running.id, (b) => FINAL.has(b.status));
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.cancelled_at).not.toBeNull();
    expect(cancelled.request_counts?.completed).toBeGreaterThan(0);
    expect(cancelled.request_counts?.completed).toBeLessThan(400);
    const queuedDone = await waitForBatch(client, queued.id, (b) => FINAL.has(b.status));
    expect(queuedDone.status).toBe('cancelled');
    expect(queuedDone.request_counts).toEqual({ total: 400, completed: 0, failed: 0 });
    const afterDone = await waitForBatch(client, after.id, (b) => FINAL.has(b.status));
    expect(afterDone.status).toBe('completed');
    expect(afterDone.request_counts?.completed).toBe(3);
  }, 180_000);

  it('a server killed with SIGKILL mid-batch and restarted completes the batch, each request once', async () => {
    const numRequests = 160;
    const content = batchLines(numRequests, 24);
    const reference = await runReference('restart', content);
    const stateDir = join(dir, 'state-restart');
    let client = await serve(stateDir);
    const file = await client.files.create({
      file: await toFile(Buffer.from(content), 'restart.jsonl'),
      purpose: 'batch',
    });
    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/completions',
      completion_window: '24h',
    });
    const partial = await waitForBatch(client, created.id, (b) => (b.request_counts?.completed ?? 0) >= 10);
    expect(partial.status).toBe('in_progress');
    const killed = server as ServeProcess;
    killed.child.kill('SIGKILL');
    expect(await killed.exited).toBe('SIGKILL');

    client = await serve(stateDir);
    const batch = await waitForBatch(client, created.id, (b) => FINAL.has(b.status));
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: numRequests, completed: numRequests, failed: 0 });
    const done = /(\d+) requests already done/.exec(server?.stderr() ?? '');
    expect(done, server?.stderr()).not.toBeNull();
    expect(Number(done?.[1])).toBeGreaterThanOrEqual(10);
    expect(Number(done?.[1])).toBeLessThan(numRequests);
    const output = parseRecords(await (await client.files.content(batch.output_file_id as string)).text());
    expect(output).toHaveLength(numRequests);
    expect(tokenIdsByCustomId(output)).toEqual(reference);
  }, 240_000);
});
