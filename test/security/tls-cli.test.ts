/**
 * Issue 13 item 6 (TLS) through the CLI, as real processes on loopback: `seesaw coordinator
 * --tls-cert --tls-key`, two `seesaw worker --connect wss:// --tls-ca` whose peer-link listeners
 * are TLS too, and `seesaw run --cluster wss:// --tls-ca` of a P2 job spanning both hosts: the
 * same completions as a local run. The same run with a wrong CA, or over plain ws://, fails with
 * an error that says why.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  choicesById,
  clusterRunArgs,
  coordinatorUrl,
  ProcessGroup,
  runLocal,
  runToEnd,
  type Started,
  waitFor,
} from '../remote-cluster-support.ts';
import { TestCertificates } from './tls-test-support.ts';

describe('item 6 (TLS): wss:// through the CLI: coordinator, workers and run --cluster', () => {
  const group = new ProcessGroup();
  const dir = mkdtempSync(join(tmpdir(), 'seesaw-tls-cli-'));
  const certs = new TestCertificates(dir);
  const tokenFile = join(dir, 'token');
  const input = join(dir, 'prompts.jsonl');
  let rightCa = '';
  let wrongCa = '';
  let url = '';
  let reference = new Map<string, unknown>();
  const agents: Started[] = [];

  beforeAll(async () => {
    writeFileSync(tokenFile, 'tls-cli-test-secret-padded-to-at-least-32-bytes\n', { mode: 0o600 });
    writePromptsFile();
    rightCa = certs.makeCa('right');
    wrongCa = certs.makeCa('wrong');
    const { cert, key } = certs.makeServerCert('right');
    const tlsServer = ['--tls-cert', cert, '--tls-key', key];
    const coordinator = group.start([
      'coordinator',
      '--listen',
      '127.0.0.1:0',
      '--token-file',
      tokenFile,
      ...tlsServer,
    ]);
    url = await coordinatorUrl(coordinator);
    for (const name of ['host-a', 'host-b']) {
      agents.push(
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
          '--tls-ca',
          rightCa,
          ...tlsServer,
        ]),
      );
    }
    const local = join(dir, 'local.jsonl');
    runLocal(input, local);
    reference = choicesById(local);
    await waitFor('both agents to join over wss://', 30_000, () =>
      agents.every((agent) => /joined wss:\/\/.*peer links at wss:\/\//.test(agent.stderr()))
        ? true
        : undefined,
    );
  }, 90_000);

  function writePromptsFile(): void {
    const lines = Array.from({ length: 4 }, (_, i) =>
      JSON.stringify({
        custom_id: `req-${i}`,
        prompt: [5 + i, 40, 300 + i],
        max_tokens: 5,
        temperature: 0,
        ignore_eos: true,
      }),
    );
    writeFileSync(input, `${lines.join('\n')}\n`);
  }

  afterAll(async () => {
    await group.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs a P2 job over wss:// (coordinator and peer links) with the local completions', async () => {
    expect(url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/);
    const output = join(dir, 'cluster.jsonl');
    const run = await runToEnd(
      group,
      clusterRunArgs({ url, tokenFile, config: 'P2', input, output, extra: ['--tls-ca', rightCa] }),
    );
    expect(run.code, run.stderr).toBe(0);
    expect(choicesById(output)).toEqual(reference);
  }, 60_000);

  it('refuses the coordinator when --tls-ca names another CA', async () => {
    const output = join(dir, 'wrong-ca.jsonl');
    const run = await runToEnd(
      group,
      clusterRunArgs({ url, tokenFile, config: 'D1', input, output, extra: ['--tls-ca', wrongCa] }),
    );
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/not signed by the CA given with --tls-ca/);
  }, 30_000);

  it('plain ws:// to the TLS coordinator fails with an error saying it may need TLS', async () => {
    const output = join(dir, 'plain.jsonl');
    const plain = url.replace(/^wss:/, 'ws:');
    const run = await runToEnd(group, clusterRunArgs({ url: plain, tokenFile, config: 'D1', input, output }));
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/the server may require TLS: connect with wss:\/\//);
  }, 30_000);
});
