/**
 * A Seesaw job that loses its only replica re-plans onto the healthy devices: `run --cluster
 * --prefill T2P2 --decode T4` on two host agents of two devices each (one replica over both
 * hosts), host-b's agent killed with SIGKILL mid-run. No replica is left, so the coordinator
 * re-plans the pair onto host-a's two devices (prefill P2, decode T2: the pair that uses both,
 * job-replan.ts), restarts the unfinished requests there from their prompts, and the job
 * completes with exactly the completions of a local single-device run, each once (results sent
 * before the kill kept). Network namespaces where the machine allows it, else loopback.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGet, httpUrl, metric, ProcessGroup, type Started } from './remote-cluster-support.ts';
import { runSeesawKillingHostB } from './seesaw-host-kill-support.ts';
import { TwoHostPlacement } from './two-host-cluster-support.ts';

const NUM_PROMPTS = 16;

// Names and subnet apart from the other namespace suites, which may run at the same time.
const hosts = new TwoHostPlacement('r', 235);

describe(`a Seesaw job re-planned onto the devices left after its only replica is lost, over ${hosts.where}`, () => {
  const group = new ProcessGroup();
  let dir = '';
  let tokenFile = '';
  let url = '';
  let coordinator: Started;
  let hostB: Started;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-seesaw-replan-'));
    tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'seesaw-replan-secret-padded-to-32-bytes-long\n', { mode: 0o600 });
    hosts.createNetwork();
    ({ url, coordinator, hostB } = await hosts.startCluster(group, tokenFile, 2));
  }, 60_000);

  afterAll(async () => {
    await group.stopAll();
    hosts.destroyNetwork();
    rmSync(dir, { recursive: true, force: true });
  });

  it('SIGKILL of host-b under T2P2 -> T4: re-planned to P2 -> T2 on host-a, identical outputs', async () => {
    await runSeesawKillingHostB({
      ...{ group, hosts, url, tokenFile, hostB, dir },
      ...{ numPrompts: NUM_PROMPTS, promptSeed: 11, prefill: 'T2P2', decode: 'T4', resultsBeforeKill: 2 },
    });
    const log = coordinator.stderr();
    expect(log).toMatch(/host "host-b" dropped/);
    expect(log).toMatch(
      /re-planned prefill T2P2, decode T4 on host-a \(2 devices\), host-b \(2 devices\) -> prefill P2, decode T2 on 2 healthy devices; resuming [1-9]\d* unfinished requests? there/,
    );
    expect(log).toContain('prefill P2, decode T2 on host-a (2 devices)');
    const metrics = httpGet(httpUrl(url, '/metrics'), hosts.inA);
    expect(metric(metrics, 'seesaw_jobs_failed_total')).toBe(0);
  }, 180_000);
});
