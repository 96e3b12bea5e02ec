/**
 * Early stop at stop strings on a remote job: `seesaw run --cluster` against a real coordinator
 * and host agent (own processes) writes the same records as a local `seesaw run` for lines with
 * stop strings, and the coordinator's engine generated fewer tokens than max_tokens: the job
 * client watched the job's progress messages and asked the coordinator to stop the request.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BIN,
  choicesById,
  coordinatorUrl,
  httpGet,
  httpUrl,
  metric,
  ProcessGroup,
  REPO_ROOT,
  runToEnd,
  waitForHosts,
} from './remote-cluster-support.ts';

const MAX_TOKENS = 40;

function seesaw(args: string[]): string {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (result.status !== 0) throw new Error(`seesaw ${args[0]} failed: ${result.stderr}`);
  return result.stdout;
}

function line(customId: string, body: Record<string, unknown>): string {
  return JSON.stringify({ custom_id: customId, method: 'POST', url: '/v1/completions', body });
}

describe('run --cluster with stop strings', () => {
  const group = new ProcessGroup();
  let dir = '';
  let modelDir = '';
  let tokenFile = '';
  let url = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-remote-stop-'));
    modelDir = join(dir, 'tiny');
    seesaw(['gen-model', '--shape', 'tiny', '--out', modelDir]);
    tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'loopback-stop-strings-secret-padded-to-32-bytes\n', { mode: 0o600 });
    const coordinator = group.start(['coordinator', '--listen', '127.0.0.1:0', '--token-file', tokenFile]);
    url = await coordinatorUrl(coordinator);
    group.start(['worker', '--connect', url, '--devices', '1', '--token-file', tokenFile, '--name', 'solo']);
    await waitForHosts(url, ['solo']);
  }, 120_000);

  afterAll(async () => {
    await group.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  const runLocal = (name: string, lines: string[]) => {
    const input = join(dir, `${name}.jsonl`);
    const output = join(dir, `${name}-local.jsonl`);
    writeFileSync(input, `${lines.join('\n')}\n`);
    seesaw(['run', '--model', modelDir, '--input', input, '--output', output, '--threads', '1']);
    return { input, records: choicesById(output) };
  };

  it('gives the local records and stops the remote engine early', async () => {
    const body = {
      prompt: 'Once upon a time',
      max_tokens: MAX_TOKENS,
      temperature: 0.8,
      seed: 31,
      ignore_eos: true,
    };
    const unstopped = runLocal('unstopped', [line('a', body)]);
    const text = (unstopped.records.get('a') as { text: string }[])[0].text;
    // A stop string that first occurs about a third of the way in (no replacement characters).
    let stop = '';
    for (let at = Math.floor(text.length / 3); at + 2 <= text.length && stop === ''; at++) {
      const candidate = text.slice(at, at + 2);
      if (!candidate.includes('\uFFFD') && text.indexOf(candidate) === at) stop = candidate;
    }
    expect(stop, text).not.toBe('');

    const { input, records } = runLocal('stopped', [
      line('a', { ...body, stop }),
      line('b', { ...body, seed: 32, stop: [stop, 'never-in-this-text'] }),
    ]);
    const choice = (records.get('a') as { text: string; finish_reason: string }[])[0];
    expect(choice.finish_reason).toBe('stop');
    expect(choice.text).toBe(text.slice(0, text.indexOf(stop)));

    const before = metric(httpGet(httpUrl(url, '/metrics')), 'seesaw_tokens_generated_total');
    const output = join(dir, 'stopped-cluster.jsonl');
    const result = await runToEnd(group, [
      'run',
      '--cluster',
      url,
      '--token-file',
      tokenFile,
      '--config',
      'D1',
      '--model',
      modelDir,
      '--input',
      input,
      '--output',
      output,
      '--threads',
      '1',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(choicesById(output)).toEqual(records);
    expect(readFileSync(output, 'utf8')).not.toContain('"error":{');
    // Request a stopped early: the two requests together generated fewer than 2 x max_tokens.
    const generated = metric(httpGet(httpUrl(url, '/metrics')), 'seesaw_tokens_generated_total') - before;
    expect(generated).toBeLessThan(2 * MAX_TOKENS);
  }, 120_000);
});
