/**
 * `seesaw coordinator --http`: the OpenAI batch service inside the coordinator daemon, its batches
 * run as a job on the daemon's own host agents (every actor its own process, loopback). A batch
 * through the openai client; the coordinator killed with SIGKILL mid-batch and restarted on the
 * same port and --state-dir; the agents reconnect by themselves and the batch completes with every
 * custom_id exactly once and the choices of a local single-device `seesaw run` on the same lines.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  choicesById,
  FIXTURE,
  health,
  ProcessGroup,
  runLocal,
  type Started,
  waitFor,
  writePrompts,
} from './remote-cluster-support.ts';

const NUM_PROMPTS = 48;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Both agents joined; longer than the support's 30 s, as agents start slowly on a loaded machine. */
function waitForAgents(url: string): Promise<void> {
  return waitFor('host-a and host-b to join', 90_000, () => {
    try {
      const names = health(url).hosts.map((host) => host.name);
      return names.includes('host-a') && names.includes('host-b') ? true : undefined;
    } catch {
      return undefined;
    }
  }).then(() => {});
}

/** The service's baseURL from the coordinator's second stdout line. */
function serviceUrl(coordinator: Started): Promise<string> {
  return waitFor('the coordinator service to listen', 30_000, () => {
    if (coordinator.child.exitCode !== null) {
      throw new Error(`coordinator exited ${coordinator.child.exitCode}: ${coordinator.stderr()}`);
    }
    return /service listening on (http:\/\/\S+)/.exec(coordinator.stdout())?.[1];
  });
}

describe('seesaw coordinator --http (the service inside the daemon, D2 over two host agents)', () => {
  const group = new ProcessGroup();
  let dir = '';

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-coordinator-service-'));
  });

  afterAll(async () => {
    await group.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a coordinator killed with SIGKILL mid-batch and restarted completes the batch, each request once', async () => {
    const tokenFile = join(dir, 'cluster-token');
    writeFileSync(tokenFile, 'loopback-cluster-secret-padded-to-at-least-32-bytes\n', { mode: 0o600 });
    const keyFile = join(dir, 'api-key');
    writeFileSync(keyFile, 'service-api-key-padded-to-at-least-32-bytes-long\n', { mode: 0o600 });
    const input = join(dir, 'prompts.jsonl');
    writePrompts(input, NUM_PROMPTS, (i) => 8 + ((i * 5) % 9));
    const localOutput = join(dir, 'local.jsonl');
    runLocal(input, localOutput);

    const port = await freePort();
    const coordinatorArgs = [
      ...['coordinator', '--listen', `127.0.0.1:${port}`, '--token-file', tokenFile],
      ...['--http', '127.0.0.1:0', '--state-dir', join(dir, 'state'), '--api-key-file', keyFile],
      ...['--model', FIXTURE, '--config', 'D2', '--threads', '2', '--device-memory', '64MiB'],
      // Small steps, so the batch is still running when the coordinator is killed.
      ...['--max-num-seqs', '4'],
    ];
    let coordinator = group.start(coordinatorArgs);
    const url = `ws://127.0.0.1:${port}`;
    const apiKey = readFileSync(keyFile, 'utf8').trim();
    // The daemon listens before it prints the service's address, and an agent's first connect
    // fails fast (only later losses are retried): start the agents once it listens.
    let client = new OpenAI({ apiKey, baseURL: await serviceUrl(coordinator), maxRetries: 0 });
    for (const name of ['host-a', 'host-b']) {
      group.start(['worker', '--connect', url, '--devices', '1', '--token-file', tokenFile, '--name', name]);
    }
    // The API answers before any host has joined; the batch waits for the devices.
    const file = await client.files.create({
      file: await toFile(readFileSync(input), 'prompts.jsonl'),
      purpose: 'batch',
    });
    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/completions',
      completion_window: '24h',
    });
    await waitForAgents(url);
    await waitFor('some requests to complete', 120_000, async () => {
      const batch = await client.batches.retrieve(created.id);
      expect(batch.status, coordinator.stderr()).not.toBe('failed');
      return (batch.request_counts?.completed ?? 0) >= 4 ? batch : undefined;
    });
    coordinator.child.kill('SIGKILL');
    await coordinator.exited;

    coordinator = group.start(coordinatorArgs);
    client = new OpenAI({ apiKey, baseURL: await serviceUrl(coordinator), maxRetries: 0 });
    // The agents were never restarted: they reconnect to the new coordinator on their own.
    await waitForAgents(url);
    const batch = await waitFor('the batch to finish', 150_000, async () => {
      const current = await client.batches.retrieve(created.id);
      return ['completed', 'failed', 'cancelled', 'expired'].includes(current.status) ? current : undefined;
    });
    expect(batch.status, coordinator.stderr()).toBe('completed');
    expect(batch.request_counts).toEqual({ total: NUM_PROMPTS, completed: NUM_PROMPTS, failed: 0 });
    const done = /(\d+) requests already done/.exec(coordinator.stderr());
    expect(done, coordinator.stderr()).not.toBeNull();
    expect(Number(done?.[1])).toBeGreaterThanOrEqual(4);
    expect(Number(done?.[1])).toBeLessThan(NUM_PROMPTS);

    const outputText = await (await client.files.content(batch.output_file_id as string)).text();
    const customIds = outputText
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => (JSON.parse(line) as { custom_id: string }).custom_id);
    expect(customIds).toHaveLength(NUM_PROMPTS);
    expect(new Set(customIds).size).toBe(NUM_PROMPTS);
    const outputPath = join(dir, 'served.jsonl');
    writeFileSync(outputPath, outputText);
    expect(choicesById(outputPath)).toEqual(choicesById(localOutput));
  }, 300_000);
});
