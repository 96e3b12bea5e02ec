import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  choicesById,
  FIXTURE,
  health,
  httpGet,
  httpUrl,
  metric,
  runLocal,
  runToEnd,
  waitFor,
  waitForHosts,
  writePrompts,
} from './remote-cluster-support.ts';
import { runSeesawKillingHostB } from './seesaw-host-kill-support.ts';
import { TwoHostPlacement } from './two-host-cluster-support.ts';
import { twoHostSuite } from './two-host-suite.ts';

const NUM_PROMPTS = 24;

// Names and subnet apart from the other namespace suites, which may run at the same time.
const hosts = new TwoHostPlacement('f', 234);
const where = hosts.where;

describe(`Seesaw over two hosts of two devices each, one lost mid-run, over ${where}`, () => {
  const suite = twoHostSuite(hosts, 'seesaw-seesaw-loss-', 2);

  it('prefill T2P2, decode T4 (one replica over both hosts: shared-memory groups and peer links) equals one device', async () => {
    const input = join(suite.dir, 'short.jsonl');
    writePrompts(input, 8, (i) => 3 + ((i * 5) % 9), 13);
    const localOutput = join(suite.dir, 'short-local.jsonl');
    runLocal(input, localOutput);
    const output = join(suite.dir, 'short-cluster.jsonl');
    const result = await runToEnd(
      suite.group,
      [
        'run',
        ...['--cluster', suite.url, '--token-file', suite.tokenFile],
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
      health(suite.url, hosts.inA).hosts.every((h) => h.busyDevices === 0) ? true : undefined,
    );
  }, 120_000);

  it('SIGKILL of host-b: its replica is dropped and the job completes on host-a with identical outputs', async () => {
    const running = await runSeesawKillingHostB({
      ...{ ...suite, hosts },
      ...{ numPrompts: NUM_PROMPTS, promptSeed: 9, prefill: 'D2P2', decode: 'D2T2', resultsBeforeKill: 3 },
    });
    expect(running.stderr()).toContain('prefill D2P2, decode D2T2 on host-a (2 devices), host-b (2 devices)');
    expect(suite.coordinator.stderr()).toMatch(/host "host-b" dropped/);
    // The kill landed mid-run: host-b's replica had requests left, and they moved to host-a's.
    expect(suite.coordinator.stderr()).toMatch(
      /replica 1 stopped; requeued [1-9]\d* unfinished requests? onto 1 surviving/,
    );
    await waitForHosts(suite.url, ['host-a'], hosts.inA);
    const metrics = httpGet(httpUrl(suite.url, '/metrics'), hosts.inA);
    expect(metric(metrics, 'seesaw_jobs_failed_total')).toBe(0);
    expect(metric(metrics, 'seesaw_device_lost_total')).toBeGreaterThanOrEqual(1);
  }, 180_000);
});
