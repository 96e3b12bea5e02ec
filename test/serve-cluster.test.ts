/**
 * `seesaw serve --cluster`: the batch service in front of a coordinator and two host agents
 * (every actor its own process, loopback): a batch through the openai client on D2 gives
 * exactly the choices of a local single-device `seesaw run` on the same lines, and so does a batch
 * asking for a Seesaw pair (metadata seesaw_prefill P2, seesaw_decode T2: a job over both hosts).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServeProcess, startServe } from '../apps/cli/test/serve-test-support.ts';
import {
  choicesById,
  coordinatorUrl,
  FIXTURE,
  ProcessGroup,
  runLocal,
  waitForHosts,
  writePrompts,
} from './remote-cluster-support.ts';

const NUM_PROMPTS = 8;

describe('seesaw serve on a coordinator cluster (D2 over two host agents)', () => {
  const group = new ProcessGroup();
  let dir = '';
  let server: ServeProcess | null = null;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-serve-cluster-'));
  });

  afterAll(async () => {
    if (server !== null && server.child.exitCode === null) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    await group.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('completes a batch with the local run choices', async () => {
    const tokenFile = join(dir, 'cluster-token');
    writeFileSync(tokenFile, 'loopback-cluster-secret-padded-to-at-least-32-bytes\n', { mode: 0o600 });
    const keyFile = join(dir, 'api-key');
    writeFileSync(keyFile, 'service-api-key-padded-to-at-least-32-bytes-long\n', { mode: 0o600 });
    const input = join(dir, 'prompts.jsonl');
    writePrompts(input, NUM_PROMPTS, (i) => 3 + ((i * 5) % 9));
    const localOutput = join(dir, 'local.jsonl');
    runLocal(input, localOutput);

    const coordinator = group.start(['coordinator', '--listen', '127.0.0.1:0', '--token-file', tokenFile]);
    const url = await coordinatorUrl(coordinator);
    for (const name of ['host-a', 'host-b']) {
      group.start(['worker', '--connect', url, '--devices', '1', '--token-file', tokenFile, '--name', name]);
    }
    await waitForHosts(url, ['host-a', 'host-b']);
    server = await startServe([
      ...['--model', FIXTURE, '--state-dir', join(dir, 'state'), '--api-key-file', keyFile],
      ...[
        '--cluster',
        url,
        '--token-file',
        tokenFile,
        '--config',
        'D2',
        '--threads',
        '2',
        '--device-memory',
        '64MiB',
        // Each host's KV tier: lets a batch ask for a Seesaw pair.
        '--host-kv-memory',
        '256KiB',
      ],
    ]);
    const client = new OpenAI({
      apiKey: readFileSync(keyFile, 'utf8').trim(),
      baseURL: server.baseUrl,
      maxRetries: 0,
    });
    const file = await client.files.create({
      file: await toFile(readFileSync(input), 'prompts.jsonl'),
      purpose: 'batch',
    });
    /** Runs the file as one batch (metadata: its engine choice) and writes its output to `name`. */
    const runBatch = async (name: string, metadata?: Record<string, string>) => {
      let batch = await client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/completions',
        completion_window: '24h',
        ...(metadata ? { metadata } : {}),
      });
      while (!['completed', 'failed', 'cancelled'].includes(batch.status)) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        batch = await client.batches.retrieve(batch.id);
      }
      expect(batch.status, server?.stderr()).toBe('completed');
      expect(batch.request_counts).toEqual({ total: NUM_PROMPTS, completed: NUM_PROMPTS, failed: 0 });
      const outputPath = join(dir, name);
      writeFileSync(outputPath, await (await client.files.content(batch.output_file_id as string)).text());
      return outputPath;
    };
    expect(choicesById(await runBatch('served.jsonl'))).toEqual(choicesById(localOutput));
    // A Seesaw pair asked for by the batch: a P2 -> T2 job over both hosts.
    const pair = await runBatch('served-seesaw.jsonl', { seesaw_prefill: 'P2', seesaw_decode: 'T2' });
    expect(choicesById(pair)).toEqual(choicesById(localOutput));
  }, 180_000);
});
