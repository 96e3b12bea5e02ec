import { describe, expect, it } from 'vitest';
import { httpGet, httpUrl, metric } from './remote-cluster-support.ts';
import { runSeesawKillingHostB } from './seesaw-host-kill-support.ts';
import { TwoHostPlacement } from './two-host-cluster-support.ts';
import { twoHostSuite } from './two-host-suite.ts';

const NUM_PROMPTS = 16;

// Names and subnet apart from the other namespace suites, which may run at the same time.
const hosts = new TwoHostPlacement('r', 235);

describe(`a Seesaw job re-planned onto the devices left after its only replica is lost, over ${hosts.where}`, () => {
  const suite = twoHostSuite(hosts, 'seesaw-seesaw-replan-', 2);

  it('SIGKILL of host-b under T2P2 -> T4: re-planned to P2 -> T2 on host-a, identical outputs', async () => {
    await runSeesawKillingHostB({
      ...{ ...suite, hosts },
      ...{ numPrompts: NUM_PROMPTS, promptSeed: 11, prefill: 'T2P2', decode: 'T4', resultsBeforeKill: 2 },
    });
    const log = suite.coordinator.stderr();
    expect(log).toMatch(/host "host-b" dropped/);
    expect(log).toMatch(
      /re-planned prefill T2P2, decode T4 on host-a \(2 devices\), host-b \(2 devices\) -> prefill P2, decode T2 on 2 healthy devices; resuming [1-9]\d* unfinished requests? there/,
    );
    expect(log).toContain('prefill P2, decode T2 on host-a (2 devices)');
    const metrics = httpGet(httpUrl(suite.url, '/metrics'), hosts.inA);
    expect(metric(metrics, 'seesaw_jobs_failed_total')).toBe(0);
  }, 180_000);
});
