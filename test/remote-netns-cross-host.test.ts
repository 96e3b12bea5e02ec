/**
 * A replica spanning two hosts as network namespaces joined by a veth pair (needs root and `ip`;
 * otherwise skipped, the name says why). Coordinator and host-a live in namespace A, host-b and
 * the job client in B; both agents advertise their default peer address (the interface toward
 * the coordinator), so the agent-to-agent link of T2's all-reduce and P2's activations crosses
 * the veth. Both give the local single-device completions.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  choicesById,
  clusterRunArgs,
  coordinatorUrl,
  health,
  ProcessGroup,
  runLocal,
  runToEnd,
  type Started,
  waitFor,
  waitForHosts,
  writePrompts,
} from './remote-cluster-support.ts';
import { TwoHostNetwork, whyNoNamespaces } from './two-host-network.ts';

// Names and subnet apart from the other namespace suite, which may run at the same time.
const net = new TwoHostNetwork('x', 232);
const { addrA: ADDR_A, addrB: ADDR_B, inA: IN_A, inB: IN_B } = net;

const skipReason = whyNoNamespaces(`seesaw-xprobe-${process.pid % 100_000}`);
const title = skipReason
  ? `a replica spanning two network namespaces (SKIPPED: ${skipReason})`
  : 'a replica spanning two network namespaces joined by a veth pair';

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
    writeFileSync(tokenFile, 'netns-cross-host-secret-padded-to-at-least-32-bytes\n', { mode: 0o600 });
    input = join(dir, 'prompts.jsonl');
    writePrompts(input, 6, (i) => 4 + i, 11);
    net.destroy();
    net.create();
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
    net.destroy();
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
        clusterRunArgs({ url, tokenFile: tokenFile, config, input, output }),
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
