/**
 * Per-batch engine configuration in `seesaw serve` (real child process, the official `openai`
 * client): batches queued with `metadata.seesaw_config` and with a Seesaw pair
 * (`seesaw_prefill` / `seesaw_decode`) run in order, each on its own engine, and give the token
 * ids `seesaw run` gives on the same lines; bad values are a 400 naming the key.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findEngineUnavailableReason, runSeesaw } from '../../test/e2e-test-support.ts';
import { type ServeProcess, startServe } from '../../test/serve-test-support.ts';

const engineUnavailableReason = await findEngineUnavailableReason();

/** Greedy and seeded lines, asking for token ids. */
function batchLines(count: number, maxTokens: number): string {
  const lines: string[] = [];
  for (let index = 0; index < count; index++) {
    const sampling = index % 2 === 0 ? { temperature: 0 } : { temperature: 0.8, seed: 500 + index };
    const body = {
      prompt: `batch line ${index} of the configs test`,
      max_tokens: maxTokens,
      ignore_eos: true,
      return_token_ids: true,
      ...sampling,
    };
    lines.push(JSON.stringify({ custom_id: `c-${index}`, method: 'POST', url: '/v1/completions', body }));
  }
  return `${lines.join('\n')}\n`;
}

/** custom_id -> token ids; fails on an error record or a custom_id seen twice. */
function tokenIds(text: string): Map<string, number[]> {
  const byId = new Map<string, number[]>();
  for (const line of text.split('\n').filter((l) => l !== '')) {
    const record = JSON.parse(line);
    expect(record.error).toBeNull();
    expect(byId.has(record.custom_id)).toBe(false);
    byId.set(record.custom_id, record.response.body.choices[0].token_ids);
  }
  return byId;
}

describe.skipIf(engineUnavailableReason !== null)('per-batch engine configuration (serve)', () => {
  let dir = '';
  let server: ServeProcess | null = null;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-batch-config-'));
  });

  afterAll(async () => {
    if (server !== null && server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('queued batches with seesaw_config T2 and a P2->T2 pair both give the tokens of seesaw run', async () => {
    const modelDir = join(dir, 'tiny');
    expect((await runSeesaw(['gen-model', '--shape', 'tiny', '--out', modelDir])).status).toBe(0);
    const keyFile = join(dir, 'api-key');
    expect((await runSeesaw(['token', '--out', keyFile])).status).toBe(0);
    const content = batchLines(6, 6);
    const input = join(dir, 'lines.jsonl');
    const output = join(dir, 'run-output.jsonl');
    writeFileSync(input, content);
    const run = await runSeesaw(['run', '--model', modelDir, '--input', input, '--output', output]);
    expect(run.status, run.stderr).toBe(0);
    const reference = tokenIds(readFileSync(output, 'utf8'));

    server = await startServe([
      ...['--model', modelDir, '--state-dir', join(dir, 'state'), '--api-key-file', keyFile],
      ...['--threads', '2', '--host-kv-memory', '64MiB'],
    ]);
    const client = new OpenAI({
      apiKey: readFileSync(keyFile, 'utf8').trim(),
      baseURL: server.baseUrl,
      maxRetries: 0,
    });
    const file = await client.files.create({
      file: await toFile(Buffer.from(content), 'lines.jsonl'),
      purpose: 'batch',
    });
    const create = (metadata: Record<string, string>) =>
      client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/completions',
        completion_window: '24h',
        metadata,
      });
    await expect(create({ seesaw_config: 'X9' })).rejects.toMatchObject({
      status: 400,
      code: 'invalid_metadata',
      param: 'metadata.seesaw_config',
    });
    await expect(create({ seesaw_prefill: 'P2' })).rejects.toMatchObject({
      status: 400,
      param: 'metadata.seesaw_decode',
    });
    await expect(create({ seesaw_prefill: 'P2', seesaw_decode: 'T4' })).rejects.toBeInstanceOf(
      OpenAI.BadRequestError,
    );

    const staticBatch = await create({ seesaw_config: 'T2' });
    const pairBatch = await create({ seesaw_prefill: 'P2', seesaw_decode: 'T2', team: 'kept' });
    for (const created of [staticBatch, pairBatch]) {
      let batch = created;
      while (!['completed', 'failed', 'cancelled', 'expired'].includes(batch.status)) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        batch = await client.batches.retrieve(created.id);
      }
      expect(batch.status, server.stderr()).toBe('completed');
      const text = await (await client.files.content(batch.output_file_id as string)).text();
      expect(tokenIds(text)).toEqual(reference);
    }
    const log = server.stderr();
    // Each batch ran on the engine it asked for, in the order they were created.
    const staticAt = log.indexOf('engine T2 open');
    const pairAt = log.indexOf('engine P2->T2 open');
    expect(staticAt, log).toBeGreaterThan(-1);
    expect(pairAt, log).toBeGreaterThan(staticAt);
  }, 240_000);
});
