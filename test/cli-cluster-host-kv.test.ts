/**
 * `seesaw run|bench --devices 2 --config P2 --host-kv-memory SIZE --preemption swap` end to end:
 * device workers with room for only a few sequences swap preempted ones through the host's
 * kv-store worker, recompute nothing, and complete every prompt exactly like the in-process device.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = join(import.meta.dirname, '../apps/cli/bin/seesaw.js');
/** Each P2 stage of the tiny model holds ~4 MiB of weights: this leaves about 30 KV blocks. */
const DEVICE_MEMORY = '5MiB';
const CLUSTER_FLAGS = ['--devices', '2', '--config', 'P2', '--device-memory', DEVICE_MEMORY];
const SWAP_FLAGS = ['--host-kv-memory', '64MiB', '--preemption', 'swap'];

function seesaw(args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function choicesById(path: string): Map<string, unknown> {
  const records = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line));
  return new Map(records.map((r) => [r.custom_id, r.response?.body?.choices ?? r.error]));
}

describe('a local cluster with a host KV tier from the command line', () => {
  let dir = '';
  let modelDir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-cli-cluster-kv-'));
    modelDir = join(dir, 'tiny');
    expect(seesaw(['gen-model', '--shape', 'tiny', '--seed', '9', '--out', modelDir]).status).toBe(0);
    const prompts = Array.from({ length: 12 }, (_, i) =>
      JSON.stringify({
        custom_id: `p${i}`,
        prompt: Array.from({ length: 60 + i * 7 }, (_, j) => 3 + ((i * 31 + j * 17) % 2000)),
        max_tokens: 40,
        temperature: i % 2 === 0 ? 0 : 0.8,
        seed: i,
        ignore_eos: true,
        return_token_ids: true,
      }),
    );
    writeFileSync(join(dir, 'prompts.jsonl'), `${prompts.join('\n')}\n`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('run: the same completions as the in-process device', () => {
    const base = ['run', '--model', modelDir, '--input', join(dir, 'prompts.jsonl'), '--threads', '2'];
    const single = seesaw([...base, '--output', join(dir, 'single.jsonl')]);
    expect(single.status, single.stderr).toBe(0);
    const swapped = seesaw([...base, '--output', join(dir, 'swap.jsonl'), ...CLUSTER_FLAGS, ...SWAP_FLAGS]);
    expect(swapped.status, swapped.stderr).toBe(0);
    const expected = choicesById(join(dir, 'single.jsonl'));
    expect(expected.size).toBe(12);
    expect(choicesById(join(dir, 'swap.jsonl'))).toEqual(expected);
  });

  it('bench: every preemption is a swap, nothing is recomputed', () => {
    const result = seesaw([
      'bench',
      '--model',
      modelDir,
      '--dataset',
      'random',
      '--input-len',
      '100',
      '--output-len',
      '40',
      '--num-prompts',
      '12',
      '--threads',
      '2',
      ...CLUSTER_FLAGS,
      ...SWAP_FLAGS,
    ]);
    expect(result.status, result.stderr).toBe(0);
    const match = /Preemptions: (\d+) \((\d+) swapped to host memory, (\d+) tokens recomputed\)/.exec(
      result.stdout,
    );
    expect(match, result.stdout).not.toBeNull();
    const [, numPreemptions, numSwapOuts, numRecomputed] = match!.map(Number);
    expect(numPreemptions).toBeGreaterThan(0);
    expect(numSwapOuts).toBe(numPreemptions);
    expect(numRecomputed).toBe(0);
  });
});
