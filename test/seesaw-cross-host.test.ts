/**
 * Seesaw across two hosts: `seesaw run --cluster --prefill X --decode Y` on two host agents with
 * one device each, so every link of both layouts crosses hosts (P2's activations, T2's
 * all-reduce, the weight-slice mesh of the re-shards, the remote device's kv-store link), gives
 * exactly the completions of a local single-device run, on the p2p and the host re-shard route.
 * The hosts are network namespaces joined by a veth pair where the machine allows it (root and
 * `ip`), else two agents on loopback (the title says which).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  choicesById,
  FIXTURE,
  health,
  runLocal,
  runToEnd,
  waitFor,
  writePrompts,
} from './remote-cluster-support.ts';
import { TwoHostPlacement } from './two-host-cluster-support.ts';
import { twoHostSuite } from './two-host-suite.ts';

const NUM_PROMPTS = 8;
const maxTokens = (i: number) => 3 + ((i * 5) % 9);
const HOST_KV_MEMORY = '256KiB';

// Names and subnet apart from the other namespace suites, which may run at the same time.
const hosts = new TwoHostPlacement('s', 233);
const where = hosts.where;

describe(`Seesaw run --cluster over ${where}`, () => {
  const suite = twoHostSuite(hosts, 'seesaw-seesaw-cross-', 1);
  let input = '';
  /** Each host agent's stderr so far (its device workers log there). */
  const agentLogs = (): string[] => [suite.hostA.stderr(), suite.hostB.stderr()];
  let reference = new Map<string, unknown>();

  beforeAll(() => {
    input = join(suite.dir, 'prompts.jsonl');
    writePrompts(input, NUM_PROMPTS, maxTokens, 5);
    const local = join(suite.dir, 'local.jsonl');
    runLocal(input, local);
    reference = choicesById(local);
  }, 60_000);

  it.each([
    ['P2', 'T2', 'p2p', 'default'],
    ['T2', 'P2', 'host', 'on'],
  ])(
    'prefill %s, decode %s (%s re-shards, host weight cache %s) over host-a and host-b equals the local single-device run',
    async (prefill, decode, route, hostWeightCache) => {
      const output = join(suite.dir, `seesaw-${prefill}-${decode}.jsonl`);
      const logLengthsBefore = agentLogs().map((log) => log.length);
      // The job client runs on host B: its requests and results cross the link too.
      const result = await runToEnd(
        suite.group,
        [
          'run',
          '--cluster',
          suite.url,
          '--token-file',
          suite.tokenFile,
          '--prefill',
          prefill,
          '--decode',
          decode,
          '--reshard-route',
          route,
          // A host tier of a few sequences: prefill stops when it is full, so the run switches
          // back and forth several times.
          '--host-kv-memory',
          HOST_KV_MEMORY,
          '--device-memory',
          '64MiB',
          '--model',
          FIXTURE,
          '--input',
          input,
          '--output',
          output,
          '--threads',
          '2',
          ...(hostWeightCache === 'on' ? ['--host-weight-cache', 'on'] : []),
        ],
        hosts.inB,
      );
      expect(result.stderr).toContain(
        `prefill ${prefill}, decode ${decode} on host-a (1 device), host-b (1 device)`,
      );
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain(`Requests: ${NUM_PROMPTS} ok, 0 errors`);
      const switches = /Phases: (\d+) switch/.exec(result.stdout);
      expect(Number(switches?.[1] ?? 0), result.stdout).toBeGreaterThanOrEqual(3);
      expect(choicesById(output)).toEqual(reference);
      // Each host keeps its device's shard under both layouts in host memory (the tiny model fits
      // in any host's free memory, so the default keeps it too); with 'on' the host route reloads
      // whole shards from it.
      const newLogs = agentLogs()
        .map((log, host) => log.slice(logLengthsBefore[host]))
        .join('');
      const cachingDevices = newLogs
        .split('\n')
        .filter((line) => line.includes("MiB more for layout 1's shard"))
        .map((line) => line.split(':')[0]);
      expect(cachingDevices.sort(), newLogs).toEqual([
        'device 0 (dp 0, pp 0, tp 0)@host-a',
        `device 1 (dp 0, ${prefill === 'P2' ? 'pp 1, tp 0' : 'pp 0, tp 1'})@host-b`,
      ]);
      await waitFor('the devices to be released', 10_000, () =>
        health(suite.url, hosts.inA).hosts.every((h) => h.busyDevices === 0) ? true : undefined,
      );
    },
    120_000,
  );

  it('cluster-run runs a Seesaw script (prefill P2, decode T2) over two local agents with the same outputs', async () => {
    const output = join(suite.dir, 'cluster-run.jsonl');
    const script = join(suite.dir, 'seesaw-cluster.json');
    writeFileSync(
      script,
      JSON.stringify({
        tokenFile: suite.tokenFile,
        hosts: [
          { name: 'run-a', devices: 1 },
          { name: 'run-b', devices: 1 },
        ],
        prefill: 'P2',
        decode: 'T2',
        hostKvMemory: HOST_KV_MEMORY,
        threadsPerDevice: 1,
        job: { model: FIXTURE, input, output },
      }),
    );
    const result = await runToEnd(suite.group, ['cluster-run', script]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('prefill P2, decode T2 on run-a (1 device), run-b (1 device)');
    expect(result.stdout).toContain(`Requests: ${NUM_PROMPTS} ok, 0 errors`);
    expect(choicesById(output)).toEqual(reference);
  }, 120_000);
});
