/**
 * A replica spanning two hosts as network namespaces joined by a veth pair (needs root and `ip`;
 * otherwise skipped, the name says why). Coordinator and host-a live in namespace A, host-b and
 * the job client in B; both agents advertise their default peer address (the interface toward
 * the coordinator), so the agent-to-agent link of T2's all-reduce and P2's activations crosses
 * the veth. Both give the local single-device completions.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  choicesById,
  coordinatorUrl,
  FIXTURE,
  health,
  ProcessGroup,
  runLocal,
  runToEnd,
  type Started,
  waitFor,
  waitForHosts,
  writePrompts,
} from './remote-cluster-support.ts';

// Names and subnet apart from remote-netns.test.ts, which may run at the same time.
const TAG = `${process.pid % 100_000}`;
const NS_A = `seesaw-xa-${TAG}`;
const NS_B = `seesaw-xb-${TAG}`;
const VETH_A = `sxa${TAG}`;
const VETH_B = `sxb${TAG}`;
const SUBNET = `10.232.${process.pid % 250}`;
const ADDR_A = `${SUBNET}.1`;
const ADDR_B = `${SUBNET}.2`;
const IN_A = ['ip', 'netns', 'exec', NS_A];
const IN_B = ['ip', 'netns', 'exec', NS_B];

function ip(...args: string[]): { ok: boolean; error: string } {
  const result = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: result.status === 0, error: (result.stderr || result.error?.message || '').trim() };
}

function whyNoNamespaces(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root';
  if (!existsSync('/usr/sbin/ip') && !existsSync('/sbin/ip') && !existsSync('/usr/bin/ip'))
    return 'no `ip` command';
  const probe = `seesaw-xprobe-${TAG}`;
  const added = ip('netns', 'add', probe);
  if (!added.ok) return `ip netns add failed: ${added.error}`;
  ip('netns', 'del', probe);
  if (spawnSync('curl', ['--version']).status !== 0) return 'no `curl` command';
  return undefined;
}

const skipReason = whyNoNamespaces();
const title = skipReason
  ? `a replica spanning two network namespaces (SKIPPED: ${skipReason})`
  : 'a replica spanning two network namespaces joined by a veth pair';

function must(result: { ok: boolean; error: string }, what: string): void {
  if (!result.ok) throw new Error(`${what}: ${result.error}`);
}

function createNetwork(): void {
  must(ip('netns', 'add', NS_A), 'netns add A');
  must(ip('netns', 'add', NS_B), 'netns add B');
  must(ip('link', 'add', VETH_A, 'type', 'veth', 'peer', 'name', VETH_B), 'veth pair');
  must(ip('link', 'set', VETH_A, 'netns', NS_A), 'veth into A');
  must(ip('link', 'set', VETH_B, 'netns', NS_B), 'veth into B');
  must(ip('-n', NS_A, 'addr', 'add', `${ADDR_A}/24`, 'dev', VETH_A), 'address A');
  must(ip('-n', NS_B, 'addr', 'add', `${ADDR_B}/24`, 'dev', VETH_B), 'address B');
  for (const [ns, dev] of [
    [NS_A, VETH_A],
    [NS_B, VETH_B],
  ] as const) {
    must(ip('-n', ns, 'link', 'set', 'lo', 'up'), `lo up in ${ns}`);
    must(ip('-n', ns, 'link', 'set', dev, 'up'), `${dev} up`);
  }
}

function deleteNetwork(): void {
  ip('netns', 'del', NS_A);
  ip('netns', 'del', NS_B);
}

describe.skipIf(skipReason !== undefined)(title, () => {
  const group = new ProcessGroup();
  let dir = '';
  let tokenFile = '';
  let url = '';
  let input = '';
  let reference = new Map<string, unknown>();
  const agents: Started[] = [];

  const startAgent = (name: string, prefix: string[]) =>
    group.start(
      ['worker', '--connect', url, '--devices', '1', '--token-file', tokenFile, '--name', name],
      prefix,
    );

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-netns-cross-'));
    tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'netns-cross-host-secret\n');
    input = join(dir, 'prompts.jsonl');
    writePrompts(input, 6, (i) => 4 + i, 11);
    deleteNetwork();
    createNetwork();
    const coordinator = group.start(
      ['coordinator', '--listen', `${ADDR_A}:0`, '--token-file', tokenFile],
      IN_A,
    );
    url = await coordinatorUrl(coordinator);
    agents.push(startAgent('host-a', IN_A), startAgent('host-b', IN_B));
    const local = join(dir, 'local.jsonl');
    runLocal(input, local);
    reference = choicesById(local);
    await waitForHosts(url, ['host-a', 'host-b'], IN_A);
  });

  afterAll(async () => {
    await group.stopAll();
    deleteNetwork();
    rmSync(dir, { recursive: true, force: true });
  });

  it('each agent advertises its address on the veth as its peer address', async () => {
    const addresses = [ADDR_A, ADDR_B];
    await waitFor('the agents to log their peer address', 10_000, () =>
      agents.every((agent, i) => agent.stderr().includes(`peer links at ws://${addresses[i]}:`))
        ? true
        : undefined,
    );
  });

  it.each(['T2', 'P2'])(
    '%s with one device in each namespace equals the local single-device run',
    async (config) => {
      const output = join(dir, `cluster-${config}.jsonl`);
      const result = await runToEnd(
        group,
        [
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
        ],
        IN_B,
      );
      expect(result.stderr).toContain(`${config} on host-a (1 device), host-b (1 device)`);
      expect(result.code).toBe(0);
      expect(choicesById(output)).toEqual(reference);
      await waitFor('the devices to be released', 10_000, () =>
        health(url, IN_A).hosts.every((h) => h.busyDevices === 0) ? true : undefined,
      );
    },
    60_000,
  );
});
