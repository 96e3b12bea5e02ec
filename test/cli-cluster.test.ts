/**
 * `seesaw run --devices N --config DxTyPz` end to end in a child process: the same completions as
 * the in-process device, and clear errors for a device count that does not match the layout or
 * a layout the model cannot be split by.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO_ROOT = join(import.meta.dirname, '..');
const BIN = join(REPO_ROOT, 'apps', 'cli', 'bin', 'seesaw.js');

function seesaw(args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** custom_id -> the completion choices (everything but ids and timings). */
function choicesById(path: string): Map<string, unknown> {
  const records = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line));
  return new Map(records.map((r) => [r.custom_id, r.response?.body?.choices ?? r.error]));
}

describe('seesaw run on a local cluster', () => {
  let dir = '';
  let modelDir = '';
  let input = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-cli-cluster-'));
    modelDir = join(dir, 'tiny');
    expect(seesaw(['gen-model', '--shape', 'tiny', '--out', modelDir, '--seed', '5']).status).toBe(0);
    input = join(dir, 'prompts.jsonl');
    const lines = [
      { custom_id: 'a', prompt: 'hello world', max_tokens: 9, temperature: 0 },
      {
        custom_id: 'b',
        prompt: [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21],
        max_tokens: 12,
        temperature: 0,
      },
      { custom_id: 'c', prompt: 'the quick brown fox jumps', max_tokens: 4, temperature: 0 },
      { custom_id: 'd', prompt: 'seeded sampling', max_tokens: 7, temperature: 0.8, top_k: 20, seed: 42 },
    ];
    writeFileSync(input, `${lines.map((line) => JSON.stringify(line)).join('\n')}\n`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('--devices 2 --config T2 completes every prompt exactly like the in-process device', () => {
    const single = join(dir, 'single.jsonl');
    const cluster = join(dir, 'cluster.jsonl');
    const base = ['run', '--model', modelDir, '--input', input, '--threads', '2'];
    const reference = seesaw([...base, '--output', single]);
    expect(reference.status, reference.stderr).toBe(0);
    const result = seesaw([
      ...base,
      '--output',
      cluster,
      '--devices',
      '2',
      '--config',
      'T2',
      '--device-memory',
      '64MiB',
    ]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toContain('on T2 on 2 device workers (1 thread each)');
    const expected = choicesById(single);
    expect(expected.size).toBe(4);
    expect(choicesById(cluster)).toEqual(expected);
  });

  it('exits 2 when --devices does not match the configuration', () => {
    const result = seesaw([
      'run',
      '--model',
      modelDir,
      '--input',
      input,
      '--output',
      join(dir, 'x.jsonl'),
      '--devices',
      '3',
      '--config',
      'T2P2',
    ]);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(
      '--devices 3 does not match --config T2P2, which needs dp * tp * pp = 1 * 2 * 2 = 4 devices',
    );
  });

  it('exits 1 naming the problem when the model does not divide', () => {
    const result = seesaw([
      'run',
      '--model',
      modelDir,
      '--input',
      input,
      '--output',
      join(dir, 'y.jsonl'),
      '--devices',
      '3',
      '--config',
      'T3',
    ]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/T3 cannot shard this model: \d+ attention heads do not divide by TP 3/);
  });
});
