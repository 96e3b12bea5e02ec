/**
 * Seesaw jobs on two host agents with two devices each. T2P2 -> T4: one replica over both hosts,
 * each prefill stage's TP group in one host's shared memory, the T4 group and the pipeline links
 * across. Then a lost host in a Seesaw job: `run --cluster --prefill D2P2 --decode D2T2` on two host agents
 * with two devices each (one replica a host), host-b's agent killed with SIGKILL mid-run. Its
 * replica is dropped, its unfinished requests start over from their prompts on host-a's replica,
 * and the job completes with exactly the completions of a local single-device run (results sent
 * before the kill included, each once). The hosts are network namespaces where the machine
 * allows it, else two agents on loopback (the title says which).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  choicesById,
  FIXTURE,
  health,
  httpGet,
  httpUrl,
  metric,
  ProcessGroup,
  runLocal,
  runToEnd,
  type Started,
  waitFor,
  waitForHosts,
  writePrompts,
} from './remote-cluster-support.ts';
import { runSeesawKillingHostB } from './seesaw-host-kill-support.ts';
import { TwoHostPlacement } from './two-host-cluster-support.ts';

const NUM_PROMPTS = 24;

// Names and subnet apart from the other namespace suites, which may run at the same time.
const hosts = new TwoHostPlacement('f', 234);
const where = hosts.where;

describe(`Seesaw over two hosts of two devices each, one lost mid-run, over ${where}`, () => {
  const group = new ProcessGroup();
  let dir = '';
  let tokenFile = '';
  let url = '';
  let coordinator: Started;
  let hostB: Started;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-seesaw-loss-'));
    tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'seesaw-host-loss-secret-padded-to-32-bytes\n', { mode: 0o600 });
    hosts.createNetwork();
    ({ url, coordinator, hostB } = await hosts.startCluster(group, tokenFile, 2));
  }, 60_000);

  afterAll(async () => {
    await group.stopAll();
    hosts.destroyNetwork();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prefill T2P2, decode T4 (one replica over both hosts: shared-memory groups and peer links) equals one device', async () => {
    const input = join(dir, 'short.jsonl');
    writePrompts(input, 8, (i) => 3 + ((i * 5) % 9), 13);
    const localOutput = join(dir, 'short-local.jsonl');
    runLocal(input, localOutput);
    const output = join(dir, 'short-cluster.jsonl');
    const result = await runToEnd(
      group,
      [
        'run',
        ...['--cluster', url, '--token-file', tokenFile],
        ...['--prefill', 'T2P2', '--decode', 'T4', '--reshard-route', 'p2p'],
        ...['--host-kv-memory', '256KiB', '--device-memory', '64MiB', '--threads', '4'],
        ...['--model', FIXTURE, '--input', input, '--output', output],
      ],
      hosts.inA,
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('prefill T2P2, decode T4 on host-a (2 devices), host-b (2 devices)');
    expect(result.stdout).toMatch(/Phases: ([2-9]|\d{2,}) switches/);
    expect(choicesById(output)).toEqual(choicesById(localOutput));
    await waitFor('the devices to be released', 10_000, () =>
      health(url, hosts.inA).hosts.every((h) => h.busyDevices === 0) ? true : undefined,
    );
  }, 120_000);

  it('SIGKILL of host-b: its replica is dropped and the job completes on host-a with identical outputs', async () => {
    const running = await runSeesawKillingHostB({
      ...{ group, hosts, url, tokenFile, hostB, dir },
      ...{ numPrompts: NUM_PROMPTS, promptSeed: 9, prefill: 'D2P2', decode: 'D2T2', resultsBeforeKill: 3 },
    });
    expect(running.stderr()).toContain('prefill D2P2, decode D2T2 on host-a (2 devices), host-b (2 devices)');
    expect(coordinator.stderr()).toMatch(/host "host-b" dropped/);
    // The kill landed mid-run: host-b's replica had requests left, and they moved to host-a's.
    expect(coordinator.stderr()).toMatch(
      /replica 1 stopped; requeued [1-9]\d* unfinished requests? onto 1 surviving/,
    );
    await waitForHosts(url, ['host-a'], hosts.inA);
    const metrics = httpGet(httpUrl(url, '/metrics'), hosts.inA);
    expect(metric(metrics, 'seesaw_jobs_failed_total')).toBe(0);
    expect(metric(metrics, 'seesaw_device_lost_total')).toBeGreaterThanOrEqual(1);
  }, 180_000);
});
