/**
 * `seesaw coordinator --http --host-kv-memory SIZE`: the daemon's batch service runs a batch that
 * asks for a Seesaw pair (metadata seesaw_prefill P2, seesaw_decode T2) as a Seesaw job over its
 * two host agents (one device each, so the replica spans both), with the choices of a local
 * single-device `seesaw run` on the same lines. Without --host-kv-memory such a batch is refused
 * when it is created, naming the flag the pair needs. Every actor its own process, loopback.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  choicesById,
  coordinatorUrl,
  FIXTURE,
  ProcessGroup,
  runLocal,
  type Started,
  waitFor,
  waitForHosts,
  writePrompts,
} from './remote-cluster-support.ts';

const NUM_PROMPTS = 8;

/** The service's baseURL from the coordinator's stdout. */
function serviceUrl(coordinator: Started): Promise<string> {
  return waitFor('the coordinator service to listen', 30_000, () => {
    if (coordinator.child.exitCode !== null) {
      throw new Error(`coordinator exited ${coordinator.child.exitCode}: ${coordinator.stderr()}`);
    }
    return /service listening on (http:\/\/\S+)/.exec(coordinator.stdout())?.[1];
  });
}

describe('seesaw coordinator --http with a Seesaw pair (P2 -> T2 over two host agents)', () => {
  const group = new ProcessGroup();
  let dir = '';
  let tokenFile = '';
  let keyFile = '';
  let input = '';

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-coordinator-seesaw-'));
    tokenFile = join(dir, 'cluster-token');
    writeFileSync(tokenFile, 'loopback-cluster-secret-padded-to-at-least-32-bytes\n', { mode: 0o600 });
    keyFile = join(dir, 'api-key');
    writeFileSync(keyFile, 'service-api-key-padded-to-at-least-32-bytes-long\n', { mode: 0o600 });
    input = join(dir, 'prompts.jsonl');
    writePrompts(input, NUM_PROMPTS, (i) => 3 + ((i * 5) % 9));
  });

  afterAll(async () => {
    await group.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A coordinator with the service (extra flags added) and its OpenAI client. */
  async function startService(name: string, extra: string[]) {
    const coordinator = group.start([
      ...['coordinator', '--listen', '127.0.0.1:0', '--token-file', tokenFile],
      ...['--http', '127.0.0.1:0', '--state-dir', join(dir, name), '--api-key-file', keyFile],
      ...['--model', FIXTURE, '--threads', '2', '--device-memory', '64MiB', ...extra],
    ]);
    const apiKey = readFileSync(keyFile, 'utf8').trim();
    const client = new OpenAI({ apiKey, baseURL: await serviceUrl(coordinator), maxRetries: 0 });
    const file = await client.files.create({
      file: await toFile(readFileSync(input), 'prompts.jsonl'),
      purpose: 'batch',
    });
    const createPairBatch = () =>
      client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/completions',
        completion_window: '24h',
        metadata: { seesaw_prefill: 'P2', seesaw_decode: 'T2' },
      });
    return { coordinator, client, createPairBatch };
  }

  it('without --host-kv-memory a pair batch is refused when created', async () => {
    const { createPairBatch } = await startService('no-tier', []);
    await expect(createPairBatch()).rejects.toMatchObject({
      status: 400,
      message: expect.stringMatching(/--host-kv-memory/),
    });
  }, 60_000);

  it('with --host-kv-memory the pair runs as a Seesaw job with the local run choices', async () => {
    const localOutput = join(dir, 'local.jsonl');
    runLocal(input, localOutput);
    const { coordinator, client, createPairBatch } = await startService('tier', [
      '--host-kv-memory',
      '256KiB',
    ]);
    const url = await coordinatorUrl(coordinator);
    for (const name of ['host-a', 'host-b']) {
      group.start(['worker', '--connect', url, '--devices', '1', '--token-file', tokenFile, '--name', name]);
    }
    await waitForHosts(url, ['host-a', 'host-b']);
    const created = await createPairBatch();
    const batch = await waitFor('the batch to finish', 120_000, async () => {
      const current = await client.batches.retrieve(created.id);
      return ['completed', 'failed', 'cancelled', 'expired'].includes(current.status) ? current : undefined;
    });
    expect(batch.status, coordinator.stderr()).toBe('completed');
    expect(batch.request_counts).toEqual({ total: NUM_PROMPTS, completed: NUM_PROMPTS, failed: 0 });
    expect(coordinator.stderr()).toContain('prefill P2, decode T2 on host-a (1 device), host-b (1 device)');
    const output = join(dir, 'served.jsonl');
    writeFileSync(output, await (await client.files.content(batch.output_file_id as string)).text());
    expect(choicesById(output)).toEqual(choicesById(localOutput));
  }, 180_000);
});
