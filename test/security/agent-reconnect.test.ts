/**
 * Issue 13 item 12 (reconnect): a host agent reconnects with back-off to a coordinator that was
 * killed and restarted on the same port (real processes), and shows up in /healthz again.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, REPO_ROOT } from '../remote-cluster-support.ts';

const dir = mkdtempSync(join(tmpdir(), 'seesaw-reconnect-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function seesaw(args: string[]): ChildProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.resume();
  child.stderr!.resume();
  children.push(child);
  return child;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function hostsAt(port: number): Promise<string[]> {
  try {
    const health = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as {
      hosts: Array<{ name: string }>;
    };
    return health.hosts.map((h) => h.name);
  } catch {
    return [];
  }
}

async function waitForHost(port: number, name: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await hostsAt(port)).includes(name)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`host ${name} did not join the coordinator on port ${port} within ${timeoutMs} ms`);
}

describe('agent reconnect', () => {
  it('item 12: an agent rejoins a coordinator restarted on the same port', async () => {
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${'r'.repeat(40)}\n`, { mode: 0o600 });
    const port = await freePort();
    const listen = ['coordinator', '--listen', `127.0.0.1:${port}`, '--token-file', tokenFile];
    const first = seesaw(listen);
    await new Promise((resolve) => first.stdout!.once('data', resolve));
    const agent = seesaw([
      'worker',
      '--connect',
      `ws://127.0.0.1:${port}`,
      '--devices',
      '1',
      '--token-file',
      tokenFile,
      '--name',
      'host-r',
      '--peer-listen',
      'off',
    ]);
    await waitForHost(port, 'host-r', 20_000);
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    const second = seesaw(listen);
    await new Promise((resolve) => second.stdout!.once('data', resolve));
    await waitForHost(port, 'host-r', 20_000);
    expect(agent.exitCode).toBeNull();
    agent.kill('SIGTERM');
    second.kill('SIGTERM');
  }, 60_000);
});
