/**
 * completion_window in `seesaw serve` (real child process, the official `openai` client): with
 * the window shortened by --batch-window-override, a batch that cannot finish in time ends
 * `expired` as OpenAI documents it: the requests that completed are in the output file, every
 * other one is in the error file with code `batch_expired`, each custom_id exactly once.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findEngineUnavailableReason, runSeesaw } from '../../test/e2e-test-support.ts';
import { type ServeProcess, startServe } from '../../test/serve-test-support.ts';

const engineUnavailableReason = await findEngineUnavailableReason();

/** The first lines ask for 2 tokens (done within the window), the rest for many. */
function batchLines(count: number): string {
  const lines: string[] = [];
  for (let index = 0; index < count; index++) {
    const body = { prompt: `expiry line ${index}`, max_tokens: index < 4 ? 2 : 48, ignore_eos: true };
    lines.push(JSON.stringify({ custom_id: `e-${index}`, method: 'POST', url: '/v1/completions', body }));
  }
  return `${lines.join('\n')}\n`;
}

function records(text: string): Array<{ custom_id: string; error: { code: string } | null }> {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line));
}

describe.skipIf(engineUnavailableReason !== null)('completion_window expiry (serve)', () => {
  let dir = '';
  let server: ServeProcess | null = null;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-batch-expiry-'));
  });

  afterAll(async () => {
    if (server !== null && server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('a batch past its window ends expired: completed requests kept, the rest batch_expired', async () => {
    const numRequests = 400;
    const modelDir = join(dir, 'tiny');
    expect((await runSeesaw(['gen-model', '--shape', 'tiny', '--out', modelDir])).status).toBe(0);
    const keyFile = join(dir, 'api-key');
    expect((await runSeesaw(['token', '--out', keyFile])).status).toBe(0);
    server = await startServe([
      ...['--model', modelDir, '--state-dir', join(dir, 'state'), '--api-key-file', keyFile],
      ...['--threads', '1', '--batch-window-override', '2s'],
    ]);
    const client = new OpenAI({
      apiKey: readFileSync(keyFile, 'utf8').trim(),
      baseURL: server.baseUrl,
      maxRetries: 0,
    });
    const file = await client.files.create({
      file: await toFile(Buffer.from(batchLines(numRequests)), 'lines.jsonl'),
      purpose: 'batch',
    });
    await expect(
      client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/completions',
        completion_window: '1h' as '24h',
      }),
    ).rejects.toMatchObject({ status: 400, param: 'completion_window' });
    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/completions',
      completion_window: '24h',
    });
    expect(created.completion_window).toBe('24h');
    expect(created.expires_at).toBeGreaterThanOrEqual(created.created_at + 1);
    expect(created.expires_at).toBeLessThanOrEqual(created.created_at + 3);
    let batch = created;
    while (!['completed', 'failed', 'cancelled', 'expired'].includes(batch.status)) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      batch = await client.batches.retrieve(created.id);
    }
    expect(batch.status, server.stderr()).toBe('expired');
    expect(batch.expired_at).not.toBeNull();
    const counts = batch.request_counts!;
    expect(counts.total).toBe(numRequests);
    expect(counts.completed).toBeGreaterThanOrEqual(4);
    expect(counts.failed).toBeGreaterThan(0);
    expect(counts.completed + counts.failed).toBe(numRequests);

    const output = records(await (await client.files.content(batch.output_file_id as string)).text());
    const errors = records(await (await client.files.content(batch.error_file_id as string)).text());
    expect(output).toHaveLength(counts.completed);
    expect(errors).toHaveLength(counts.failed);
    expect(output.every((record) => record.error === null)).toBe(true);
    expect(new Set(errors.map((record) => record.error?.code))).toEqual(new Set(['batch_expired']));
    const ids = [...output, ...errors].map((record) => record.custom_id);
    expect(new Set(ids).size).toBe(numRequests);
    // The short lines were first in the engine: they finished within the window.
    for (let index = 0; index < 4; index++) expect(output.map((r) => r.custom_id)).toContain(`e-${index}`);
  }, 180_000);
});
