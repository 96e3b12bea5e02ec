/**
 * Two hosts as network namespaces joined by a veth pair (needs root and `ip`; otherwise the
 * suite is skipped and its name says why). The coordinator and host-a live in namespace A,
 * host-b in namespace B; the job client runs in B, so every link crosses the veth. One D2 job
 * end to end; then host-b's agent is killed mid-run (its replica is dropped and the job completes
 * on host-a); then the cable under a job's only replica (host-c, in B) is cut: heartbeats drop the
 * host, the job stops with an error naming it and the output file (completed results kept), and a
 * re-run on host-a finishes the rest.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  choicesById,
  clusterRunArgs,
  coordinatorUrl,
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
import { ip, must, TwoHostNetwork, whyNoNamespaces } from './two-host-network.ts';

// Names and subnet apart from the other namespace suite, which may run at the same time.
const net = new TwoHostNetwork('n', 231);
const { addrA: ADDR_A, inA: IN_A, inB: IN_B, nsB: NS_B, vethB: VETH_B } = net;

const skipReason = whyNoNamespaces(`seesaw-probe-${process.pid % 100_000}`);
const title = skipReason
  ? `two hosts as network namespaces (SKIPPED: ${skipReason})`
  : 'two hosts as network namespaces joined by a veth pair';

describe.skipIf(skipReason !== undefined)(title, () => {
  const group = new ProcessGroup();
  let dir = '';
  let tokenFile = '';
  let url = '';
  let coordinator: Started;
  let hostB: Started;

  const startAgent = (name: string, prefix: string[]) =>
    group.start(
      ['worker', '--connect', url, '--devices', '1', '--token-file', tokenFile, '--name', name],
      prefix,
    );

  /** run --cluster from namespace B. */
  const clusterRun = (input: string, output: string, config: string, extra: string[] = []) =>
    runToEnd(group, clusterRunArgs({ url, tokenFile: tokenFile, config, input, output, extra }), IN_B);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-netns-'));
    tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'netns-cluster-secret-padded-to-at-least-32-bytes\n', { mode: 0o600 });
    net.destroy();
    net.create();
    coordinator = group.start(['coordinator', '--listen', `${ADDR_A}:0`, '--token-file', tokenFile], IN_A);
    url = await coordinatorUrl(coordinator);
    startAgent('host-a', IN_A);
    hostB = startAgent('host-b', IN_B);
    await waitForHosts(url, ['host-a', 'host-b'], IN_A);
  });

  afterAll(async () => {
    await group.stopAll();
    net.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the namespaces only reach each other over the veth pair', () => {
    expect(url).toBe(url.replace(/^ws:\/\/[^:]+/, `ws://${ADDR_A}`));
    // From B the coordinator answers at A's address (across the veth) ...
    expect(health(url, IN_B).hosts.map((h) => h.name)).toEqual(['host-a', 'host-b']);
    // ... and B's own loopback has no coordinator.
    const local = spawnSync(IN_B[0]!, [
      ...IN_B.slice(1),
      'curl',
      '-sS',
      '--max-time',
      '2',
      `http://127.0.0.1:${new URL(url).port}/healthz`,
    ]);
    expect(local.status).not.toBe(0);
  });

  it('one D2 job end to end across the hosts gives the local single-device completions', async () => {
    const input = join(dir, 'small.jsonl');
    writePrompts(input, 6, (i) => 4 + i, 7);
    const reference = join(dir, 'small-local.jsonl');
    runLocal(input, reference);
    const output = join(dir, 'small-cluster.jsonl');
    const result = await clusterRun(input, output, 'D2');
    expect(result.stderr).toContain('D2 on host-a (1 device), host-b (1 device)');
    expect(result.code).toBe(0);
    expect(choicesById(output)).toEqual(choicesById(reference));
  });

  /** Long job: one sequence per engine at a time, so ~1000 relayed steps and a kill lands mid-run. */
  function longJob(name: string, numPrompts: number) {
    const input = join(dir, `${name}.jsonl`);
    writePrompts(input, numPrompts, () => 50, numPrompts);
    const reference = join(dir, `${name}-local.jsonl`);
    runLocal(input, reference);
    return { input, output: join(dir, `${name}-cluster.jsonl`), expected: choicesById(reference) };
  }

  const longRunArgs = (input: string, output: string, config: string) =>
    clusterRunArgs({ url, tokenFile: tokenFile, config, input, output, extra: ['--max-num-seqs', '1'] });

  function waitForResults(running: Started, output: string, count: number): Promise<true> {
    return waitFor(`${count} results in ${output}`, 60_000, () => {
      if (running.child.exitCode !== null) throw new Error(`run ended early: ${running.stderr()}`);
      return existsSync(output) && readFileSync(output, 'utf8').split('\n').length > count ? true : undefined;
    });
  }

  it('killing host-b mid-run: its replica is dropped and the job completes on host-a', async () => {
    const numPrompts = 40;
    const { input, output, expected } = longJob('kill', numPrompts);
    const running = group.start(longRunArgs(input, output, 'D2'), IN_B);
    await waitForResults(running, output, 3);
    hostB.child.kill('SIGKILL');
    expect(await running.exited).toBe(0);
    expect(running.stdout()).toContain(`${numPrompts} ok, 0 errors`);
    expect(choicesById(output)).toEqual(expected);
    expect(coordinator.stderr()).toMatch(/device 1 \(dp 1, pp 0, tp 0\)@host-b/);
    expect(coordinator.stderr()).toMatch(/host "host-b" dropped/);
    await waitForHosts(url, ['host-a'], IN_A);
    const metrics = httpGet(httpUrl(url, '/metrics'), IN_A);
    expect(metric(metrics, 'seesaw_device_lost_total')).toBe(1);
    expect(metric(metrics, 'seesaw_jobs_failed_total')).toBe(0);
  });

  it('cutting the cable under the only replica: host dropped by heartbeats, job stops naming it, a re-run finishes', async () => {
    // Two devices, so the D1 replica goes to host-c (most free devices), across the veth.
    const hostC = group.start(
      ['worker', '--connect', url, '--devices', '2', '--token-file', tokenFile, '--name', 'host-c'],
      IN_B,
    );
    await waitForHosts(url, ['host-a', 'host-c'], IN_A);
    const numPrompts = 30;
    const { input, output, expected } = longJob('cut', numPrompts);
    // The client stays in A with the coordinator: only host-c is cut off.
    const running = group.start(longRunArgs(input, output, 'D1'), IN_A);
    await waitForResults(running, output, 2);
    const cutAtMs = Date.now();
    must(ip('-n', NS_B, 'link', 'set', VETH_B, 'down'), 'link down');
    expect(await running.exited).toBe(1);
    expect(Date.now() - cutAtMs).toBeLessThan(10_000);
    expect(running.stderr()).toContain('host host-c lost');
    expect(running.stderr()).toContain(`results completed before the failure are kept in ${output}`);
    expect(coordinator.stderr()).toMatch(/host "host-c" dropped: no heartbeat for \d+ ms/);

    const partial = choicesById(output);
    expect(partial.size).toBeGreaterThanOrEqual(2);
    expect(partial.size).toBeLessThan(numPrompts);
    for (const [id, choices] of partial) expect(choices).toEqual(expected.get(id));
    // The agent notices the silent coordinator too and, behind the cut cable, keeps trying to
    // reconnect with back-off (it would rejoin when the link comes back); stop it here.
    const silentBy = Date.now() + 30_000;
    while (!hostC.stderr().includes('coordinator silent') && Date.now() < silentBy) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(hostC.stderr()).toContain('coordinator silent');
    expect(hostC.stderr()).toContain('reconnecting');
    hostC.child.kill('SIGKILL');
    await hostC.exited;

    // Resume on what is left: D1 on host-a completes the rest into the same file.
    const rerun = await runToEnd(group, longRunArgs(input, output, 'D1'), IN_A);
    expect(rerun.code).toBe(0);
    expect(rerun.stdout).toContain(`${numPrompts - partial.size} ok, 0 errors, ${partial.size} skipped`);
    expect(choicesById(output)).toEqual(expected);
  });
});
