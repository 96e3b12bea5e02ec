import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterPreset } from '@seesaw/planner';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { UsageError } from '../args.ts';
import { main } from '../main.ts';

const FIXTURE = join(import.meta.dirname, '../../../../fixtures/tiny-llama-bf16');

async function capture(argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    return { code: await main(argv), out };
  } finally {
    spy.mockRestore();
  }
}

describe('seesaw plan / simulate', () => {
  afterEach(() => vi.restoreAllMocks());

  it('plan ranks statics and pairs and ends with the gain line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plan-'));
    const json = join(dir, 'plan.json');
    const { code, out } = await capture([
      'plan',
      '--model',
      'llama-2-70b',
      '--cluster',
      '8xA10',
      '--workload',
      'arxiv',
      '--num-requests',
      '20',
      '--threads',
      '0',
      '--top',
      '3',
      '--json',
      json,
    ]);
    expect(code).toBe(0);
    expect(out).toMatch(/static configurations \(\d+ ranked\)/);
    expect(out).toMatch(/Seesaw pairs \(prefill->decode\)/);
    expect(out.trimEnd().split('\n').at(-1)).toMatch(
      /^gain: \d+\.\d\dx \(best pair \S+->\S+ vs best static \S+\)$/,
    );
    const saved = JSON.parse(readFileSync(json, 'utf8'));
    expect(saved.bestPair.label).toContain('->');
  });

  it('simulate predicts a run of a real model directory on a profile', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'simulate-'));
    const profile = join(dir, 'profile.json');
    writeFileSync(profile, JSON.stringify({ ...clusterPreset('2xA10'), kind: 'seesaw-profile' }));
    const json = join(dir, 'sim.json');
    const { code, out } = await capture([
      'simulate',
      '--model-dir',
      FIXTURE,
      '--profile',
      profile,
      '--prefill',
      'P2',
      '--decode',
      'T2',
      '--workload',
      'constant:64:8',
      '--num-requests',
      '6',
      '--json',
      json,
    ]);
    expect(code).toBe(0);
    expect(out).toMatch(/simulated P2->T2: 6\/6 requests/);
    expect(JSON.parse(readFileSync(json, 'utf8')).outputTokens).toBe(48);
  });

  it('usage mistakes are UsageErrors naming the flag', async () => {
    await expect(
      main(['simulate', '--model', 'llama-2-7b', '--config', 'T2', '--prefill', 'P2']),
    ).rejects.toThrow(UsageError);
    await expect(main(['simulate', '--model', 'nope', '--config', 'T2'])).rejects.toThrow(
      /--model: model 'nope'/,
    );
    await expect(main(['plan', '--model', 'llama-2-7b', '--cluster', '8xTPU'])).rejects.toThrow(
      /unknown device 'TPU'/,
    );
    await expect(
      main([
        'simulate',
        '--model',
        'llama-2-70b',
        '--cluster',
        '8xA10',
        '--config',
        'D2T4',
        '--num-requests',
        '2',
      ]),
    ).rejects.toThrow(/D2T4: the weights leave no device memory for KV/);
  });
});
