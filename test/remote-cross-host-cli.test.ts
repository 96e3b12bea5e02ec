/**
 * A replica spanning hosts, every actor its own process on loopback: `seesaw coordinator`, two
 * `seesaw worker` agents with one device each (one with the default peer address, one with
 * --peer-listen), and `seesaw run --cluster` with T2 (TP all-reduce over the agents' peer link)
 * and P2 (activations over it) give exactly the completions of a local single-device run.
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

const NUM_PROMPTS = 8;
const maxTokens = (i: number) => 3 + ((i * 5) % 9);

describe('run --cluster with a replica spanning two worker processes', () => {
  const group = new ProcessGroup();
  let dir = '';
  let tokenFile = '';
  let input = '';
  let reference = new Map<string, unknown>();
  let coordinator: Started;
  let url = '';
  const agents: Started[] = [];

  const clusterRun = (output: string, config: string) =>
    runToEnd(group, clusterRunArgs({ url, tokenFile: tokenFile, config, input, output }));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-cross-host-'));
    tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'cross-host-secret-padded-to-at-least-32-bytes\n', { mode: 0o600 });
    input = join(dir, 'prompts.jsonl');
    writePrompts(input, NUM_PROMPTS, maxTokens);
    coordinator = group.start(['coordinator', '--listen', '127.0.0.1:0', '--token-file', tokenFile]);
    url = await coordinatorUrl(coordinator);
    const worker = (name: string, extra: string[]) =>
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
        ...extra,
      ]);
    agents.push(worker('host-a', []), worker('host-b', ['--peer-listen', '127.0.0.1:0']));
    const output = join(dir, 'local.jsonl');
    runLocal(input, output);
    reference = choicesById(output);
    await waitForHosts(url, ['host-a', 'host-b']);
  });

  afterAll(async () => {
    await group.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(['T2', 'P2'])(
    'run --cluster --config %s over host-a and host-b equals the local single-device run',
    async (config) => {
      const output = join(dir, `cluster-${config}.jsonl`);
      const result = await clusterRun(output, config);
      expect(result.stderr).toContain(`${config} on host-a (1 device), host-b (1 device)`);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`Requests: ${NUM_PROMPTS} ok, 0 errors`);
      expect(choicesById(output)).toEqual(reference);
      for (const agent of agents) expect(agent.stderr()).toMatch(/peer links at ws:\/\/127\.0\.0\.1:\d+/);
      await waitFor('the devices to be released', 10_000, () =>
        health(url).hosts.every((h) => h.busyDevices === 0) ? true : undefined,
      );
    },
    60_000,
  );

  it('refuses a malformed --peer-listen', async () => {
    const result = await runToEnd(group, [
      'worker',
      '--connect',
      url,
      '--token-file',
      tokenFile,
      '--peer-listen',
      'nowhere',
    ]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('--peer-listen must be HOST:PORT');
  });
});
