/**
 * Many machines on loopback, every actor its own process: `seesaw coordinator`, two `seesaw
 * worker` host agents (one device each) and `seesaw run --cluster` with D2 give exactly the
 * completions of a local single-device run; /healthz and /metrics answer; a wrong token is
 * refused; an unplaceable layout fails clearly; `cluster-run` runs a script's job; a killed
 * agent is dropped from membership.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  choicesById,
  clusterRunArgs,
  coordinatorUrl,
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

const NUM_PROMPTS = 10;
const maxTokens = (i: number) => 3 + ((i * 7) % 11);

describe('coordinator daemon, host agents and run --cluster over loopback WebSockets', () => {
  const group = new ProcessGroup();
  let dir = '';
  let tokenFile = '';
  let input = '';
  let reference = new Map<string, unknown>();
  let coordinator: Started;
  let url = '';
  const agents = new Map<string, Started>();

  const clusterRun = (output: string, config = 'D2', token = tokenFile) =>
    runToEnd(group, clusterRunArgs({ url, tokenFile: token, config, input, output }));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-remote-'));
    tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'loopback-cluster-secret-padded-to-at-least-32-bytes\n', { mode: 0o600 });
    input = join(dir, 'prompts.jsonl');
    writePrompts(input, NUM_PROMPTS, maxTokens);
    coordinator = group.start(['coordinator', '--listen', '127.0.0.1:0', '--token-file', tokenFile]);
    url = await coordinatorUrl(coordinator);
    for (const name of ['host-a', 'host-b']) {
      agents.set(
        name,
        group.start([
          'worker',
          '--connect',
          url,
          '--devices',
          '1',
          '--token-file',
          tokenFile,
          '--name',
          name,
        ]),
      );
    }
    const output = join(dir, 'local.jsonl');
    runLocal(input, output);
    reference = choicesById(output);
    await waitForHosts(url, ['host-a', 'host-b']);
  });

  afterAll(async () => {
    await group.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('/healthz lists both hosts and their devices; /metrics is Prometheus text', () => {
    const h = health(url);
    expect(h.status).toBe('ok');
    expect(h.hosts).toEqual([
      { name: 'host-a', devices: 1, busyDevices: 0 },
      { name: 'host-b', devices: 1, busyDevices: 0 },
    ]);
    expect(h.devices).toBe(2);
    const text = httpGet(httpUrl(url, '/metrics'));
    expect(text).toContain('# TYPE seesaw_hosts gauge');
    expect(text).toContain('# TYPE seesaw_requests_finished_total counter');
    expect(metric(text, 'seesaw_hosts')).toBe(2);
    expect(metric(text, 'seesaw_devices')).toBe(2);
  });

  it('refuses an agent and a job client with the wrong token, and logs it', async () => {
    const wrong = join(dir, 'wrong-token');
    writeFileSync(wrong, 'not-the-secret-but-long-enough-to-be-accepted\n', { mode: 0o600 });
    const before = metric(httpGet(httpUrl(url, '/metrics')), 'seesaw_refused_connections_total');
    const agent = await runToEnd(group, [
      'worker',
      '--connect',
      url,
      '--devices',
      '1',
      '--token-file',
      wrong,
      '--name',
      'intruder',
    ]);
    expect(agent.code).toBe(1);
    expect(agent.stderr).toContain('wrong token');
    const client = await clusterRun(join(dir, 'refused.jsonl'), 'D2', wrong);
    expect(client.code).toBe(1);
    expect(client.stderr).toContain('wrong token');
    expect(coordinator.stderr()).toMatch(/refused device "agent intruder".*wrong token/);
    expect(metric(httpGet(httpUrl(url, '/metrics')), 'seesaw_refused_connections_total')).toBe(before + 2);
    expect(health(url).hosts.map((h) => h.name)).toEqual(['host-a', 'host-b']);
  });

  it('run --cluster --config D2 completes every request exactly like a local single-device run', async () => {
    const output = join(dir, 'cluster.jsonl');
    const result = await clusterRun(output);
    expect(result.stderr).toContain('D2 on host-a (1 device), host-b (1 device)');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Requests: ${NUM_PROMPTS} ok, 0 errors`);
    expect(choicesById(output)).toEqual(reference);
    // Both hosts did work: each device logged its relayed link at the coordinator.
    expect(coordinator.stderr()).toMatch(/accepted device "device 0 \(dp 0, pp 0, tp 0\)@host-/);
    expect(coordinator.stderr()).toMatch(/accepted device "device 1 \(dp 1, pp 0, tp 0\)@host-/);

    const text = httpGet(httpUrl(url, '/metrics'));
    expect(metric(text, 'seesaw_requests_total')).toBe(NUM_PROMPTS);
    expect(metric(text, 'seesaw_requests_finished_total')).toBe(NUM_PROMPTS);
    const outputTokens = [...Array(NUM_PROMPTS).keys()].reduce((sum, i) => sum + maxTokens(i), 0);
    expect(metric(text, 'seesaw_tokens_generated_total')).toBe(outputTokens);
    expect(metric(text, 'seesaw_steps_total')).toBeGreaterThan(0);
    expect(metric(text, 'seesaw_jobs_failed_total')).toBe(0);
    await waitFor('the devices to be released', 10_000, () =>
      health(url).hosts.every((h) => h.busyDevices === 0) ? true : undefined,
    );

    // Same --output again: everything is already there, nothing is submitted.
    const again = await clusterRun(output);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`0 ok, 0 errors, ${NUM_PROMPTS} skipped`);
    expect(readFileSync(output, 'utf8').trim().split('\n')).toHaveLength(NUM_PROMPTS);
  });

  it('a layout that does not fit the hosts fails with the reason', async () => {
    const result = await clusterRun(join(dir, 'too-big.jsonl'), 'D3');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('cannot place 3 replicas of 1 devices each');
    expect(result.stderr).toContain('host-a (1 free), host-b (1 free)');
  });

  it('cluster-run starts a coordinator and agents from a script and runs its job', async () => {
    const script = join(dir, 'cluster.json');
    writeFileSync(
      script,
      JSON.stringify({
        tokenFile: 'token',
        listen: '127.0.0.1:0',
        hosts: [
          { name: 'left', devices: 1 },
          { name: 'right', devices: 1 },
        ],
        config: 'D2',
        threadsPerDevice: 1,
        job: { model: FIXTURE, input: 'prompts.jsonl', output: 'script-results.jsonl' },
      }),
    );
    const result = await runToEnd(group, ['cluster-run', script]);
    expect(result.stderr).toContain('D2 on left (1 device), right (1 device)');
    expect(result.code).toBe(0);
    expect(choicesById(join(dir, 'script-results.jsonl'))).toEqual(reference);
  });

  it('drops a host whose agent was killed', async () => {
    const victim = agents.get('host-b')!;
    victim.child.kill('SIGKILL');
    await victim.exited;
    await waitForHosts(url, ['host-a']);
    // The log line travels through the coordinator's stderr pipe, which may trail its HTTP answer.
    await waitFor('the coordinator to log the drop', 5_000, () =>
      coordinator.stderr().includes('host "host-b" dropped') ? true : undefined,
    );
    expect(metric(httpGet(httpUrl(url, '/metrics')), 'seesaw_hosts_lost_total')).toBe(1);
  });
});
