/**
 * Shared by the many-machines tests: child processes of the seesaw CLI that are always cleaned
 * up, reading a coordinator's address from its first stdout line, waiting on /healthz, prompt
 * files and output comparison.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const REPO_ROOT = join(import.meta.dirname, '..');
export const BIN = join(REPO_ROOT, 'apps', 'cli', 'bin', 'seesaw.js');
export const FIXTURE = join(import.meta.dirname, '../fixtures/tiny-llama-bf16');

/** A started child: its process, and stdout/stderr collected so far. */
export interface Started {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Children started by one test file; stopAll() kills whatever is still running. */
export class ProcessGroup {
  private readonly started: Started[] = [];

  /** `prefix` runs the command through e.g. `ip netns exec NS`. */
  start(args: string[], prefix: string[] = []): Started {
    const argv = [...prefix, process.execPath, BIN, ...args];
    const child = spawn(argv[0]!, argv.slice(1), { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    const exited = once(child, 'exit').then(([code]) => code as number | null);
    const started = { child, stdout: () => out, stderr: () => err, exited };
    this.started.push(started);
    return started;
  }

  async stopAll(): Promise<void> {
    await Promise.all(
      this.started.map(async ({ child, exited }) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}

/** Polls `check` every 100 ms until it returns a value (not undefined) or the time is up. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The ws:// (or wss://) address a coordinator printed on its first stdout line. */
export function coordinatorUrl(coordinator: Started): Promise<string> {
  return waitFor('the coordinator to listen', 30_000, () => {
    if (coordinator.child.exitCode !== null) {
      throw new Error(`coordinator exited ${coordinator.child.exitCode}: ${coordinator.stderr()}`);
    }
    return /listening on (wss?:\/\/\S+)/.exec(coordinator.stdout())?.[1];
  });
}

export interface Health {
  status: string;
  hosts: Array<{ name: string; devices: number; busyDevices: number }>;
  devices: number;
  runningJobs: Array<{ id: number; layout: string }>;
}

export function httpUrl(wsUrl: string, path: string): string {
  return `${wsUrl.replace(/^ws/, 'http')}${path}`;
}

/** Runs `curl` (optionally inside a namespace) so the request leaves from where the test says. */
export function httpGet(url: string, prefix: string[] = []): string {
  const argv = [...prefix, 'curl', '-sS', '--max-time', '5', url];
  const result = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`curl ${url}: ${result.stderr}`);
  return result.stdout;
}

export function health(wsUrl: string, prefix: string[] = []): Health {
  return JSON.parse(httpGet(httpUrl(wsUrl, '/healthz'), prefix)) as Health;
}

/** Waits until exactly `names` are joined. */
export function waitForHosts(wsUrl: string, names: string[], prefix: string[] = []): Promise<Health> {
  const want = [...names].sort().join(',');
  return waitFor(`hosts ${want}`, 30_000, () => {
    try {
      const h = health(wsUrl, prefix);
      return h.hosts.map((host) => host.name).join(',') === want ? h : undefined;
    } catch {
      return undefined;
    }
  });
}

/** Value of one sample line of a Prometheus text page. */
export function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`metric ${name} missing`);
  return Number(line.slice(name.length + 1));
}

/** Writes `count` token-id prompts (no tokenizer in the fixture): greedy and seeded sampling mixed. */
export function writePrompts(path: string, count: number, maxTokens: (i: number) => number, seed = 1): void {
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state;
  };
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const prompt = Array.from({ length: 4 + (next() % 24) }, () => 3 + (next() % 2000));
    const line: Record<string, unknown> = {
      custom_id: `req-${i}`,
      prompt,
      max_tokens: maxTokens(i),
      ignore_eos: true,
    };
    if (i % 3 === 2) Object.assign(line, { temperature: 0.8, top_k: 40, seed: 1000 + i });
    else line.temperature = 0;
    lines.push(JSON.stringify(line));
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
}

/** custom_id -> the record's choices (or error), for comparing runs. */
export function choicesById(path: string): Map<string, unknown> {
  const records = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line));
  return new Map(records.map((r) => [r.custom_id, r.response?.body?.choices ?? r.error]));
}

/** `seesaw run` in-process on one CPU device: the reference every cluster run must equal. */
export function runLocal(input: string, output: string): void {
  const result = spawnSync(
    process.execPath,
    [BIN, 'run', '--model', FIXTURE, '--input', input, '--output', output, '--threads', '1'],
    { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 },
  );
  if (result.status !== 0) throw new Error(`local run failed: ${result.stderr}`);
}

/** Runs the CLI to completion (async, so the test's event loop keeps polling meanwhile). */
export async function runToEnd(group: ProcessGroup, args: string[], prefix: string[] = []) {
  const started = group.start(args, prefix);
  const code = await started.exited;
  return { code, stdout: started.stdout(), stderr: started.stderr() };
}

/** `seesaw run --cluster` on the tiny fixture as every remote test runs it (2 threads, 64 MiB a device). */
export function clusterRunArgs(options: {
  url: string;
  tokenFile: string;
  config: string;
  input: string;
  output: string;
  extra?: string[];
}): string[] {
  const { url, tokenFile, config, input, output, extra = [] } = options;
  return [
    'run',
    '--cluster',
    url,
    '--token-file',
    tokenFile,
    '--config',
    config,
    '--model',
    FIXTURE,
    '--input',
    input,
    '--output',
    output,
    '--threads',
    '2',
    '--device-memory',
    '64MiB',
    ...extra,
  ];
}
