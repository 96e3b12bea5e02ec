import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// `seesaw run` with a 1 MiB device KV cache preempts constantly; with a host KV tier it swaps
// instead of recomputing, and the completions must not change by a single token.

const CLI = join(import.meta.dirname, '../apps/cli/bin/seesaw.js');
let workDir = '';

function seesaw(args: string[]): { status: number | null; stderr: string; stdout: string } {
  const run = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: run.status, stderr: run.stderr, stdout: run.stdout };
}

function completions(path: string): Map<string, unknown> {
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  return new Map(
    lines.map((line) => {
      const record = JSON.parse(line);
      return [record.custom_id, record.response.body.choices[0]];
    }),
  );
}

beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), 'seesaw-host-kv-'));
  expect(
    seesaw(['gen-model', '--shape', 'tiny', '--seed', '9', '--out', join(workDir, 'model')]).status,
  ).toBe(0);
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
  writeFileSync(join(workDir, 'prompts.jsonl'), `${prompts.join('\n')}\n`);
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe('seesaw run with a host KV tier', () => {
  it('swaps instead of recomputing and completes every request identically', () => {
    const common = ['run', '--model', join(workDir, 'model'), '--input', join(workDir, 'prompts.jsonl')];
    common.push('--kv-cache-memory', '1MiB', '--threads', '1');
    const recompute = seesaw([...common, '--output', join(workDir, 'recompute.jsonl')]);
    expect(recompute.status, recompute.stderr).toBe(0);
    const swap = seesaw([
      ...common,
      '--output',
      join(workDir, 'swap.jsonl'),
      '--host-kv-memory',
      '64MiB',
      '--preemption',
      'swap',
    ]);
    expect(swap.status, swap.stderr).toBe(0);
    const expected = completions(join(workDir, 'recompute.jsonl'));
    expect(expected.size).toBe(12);
    expect(completions(join(workDir, 'swap.jsonl'))).toEqual(expected);
  });

  it('refuses a swap policy without a host tier', () => {
    const result = seesaw(['run', '--model', 'x', '--input', 'y', '--output', 'z', '--preemption', 'swap']);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/--preemption swap needs --host-kv-memory/);
  });
});
