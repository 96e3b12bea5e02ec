import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { calibrationReport } from './calibration-report.ts';
import { COMPUTE_OPS, ELEMENTWISE_OPS, type OpModelShape } from './calibration-tables.ts';
import { fitProfiles } from './fitted-profiles.ts';
import { type GpuOpFit, opWork, predictOpSeconds } from './gpu-op-model.ts';

// Tables written from known rates (with seeded +-3% noise) must give those rates back: the fit
// is checked against the parameters that made the data, not against itself.
const seed = 12;
console.log(`fit-profiles.test seed ${seed}`);
function random(): () => number {
  let state = seed;
  return () => {
    state = (state * 1664525 + 1013904223) % 2 ** 32;
    return state / 2 ** 32;
  };
}

const truth: GpuOpFit = {
  matmulFlopsPerSecond: 200e12,
  linearBytesPerSecond: 1.5e12,
  linearLaunchSeconds: 12e-6,
  elementwise: Object.fromEntries(
    ELEMENTWISE_OPS.map((op, i) => [
      op,
      { bytesPerSecond: (0.5 + 0.2 * i) * 1e12, launchSeconds: (2 + i) * 1e-6 },
    ]),
  ) as GpuOpFit['elementwise'],
};
const shape: OpModelShape = {
  numHeads: 32,
  numKvHeads: 32,
  hiddenSize: 4096,
  intermediateSize: 11008,
  vocabSize: 32000,
  gatedMlp: true,
};

const dir = mkdtempSync(join(tmpdir(), 'seesaw-calibration-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeTables(): void {
  const noise = random();
  const jitter = () => 1 + (noise() - 0.5) * 0.06;
  const computeDir = join(dir, 'compute', 'fake', 'org', 'model');
  mkdirSync(computeDir, { recursive: true });
  const header = [
    ...COMPUTE_OPS.map((op) => `time_stats.${op}.median`),
    'n_head,n_kv_head,n_embd,n_expanded_embd,vocab_size,use_gated_mlp,num_tokens,num_tensor_parallel_workers',
  ].join(',');
  const rows = [header];
  for (const tp of [1, 2, 4, 8])
    for (let tokens = 1; tokens <= 4096; tokens *= 2) {
      const times = COMPUTE_OPS.map(
        (op) => predictOpSeconds(truth, op, opWork(op, shape, tokens, tp)) * 1e3 * jitter(),
      );
      rows.push([...times, 32, 32, 4096, 11008, 32000, 'True', tokens, tp].join(','));
    }
  writeFileSync(join(computeDir, 'mlp.csv'), `${rows.join('\n')}\n`);
  const networkDir = join(dir, 'network', 'fakenet');
  mkdirSync(networkDir, { recursive: true });
  const net = ['time_stats.all_reduce.median,num_workers,size,collective,devices_per_node'];
  for (let size = 2048; size <= 2 ** 26; size *= 2) {
    const seconds = 30e-6 + (((2 * 3) / 4) * size) / 100e9;
    net.push([seconds * 1e3 * jitter(), 4, size, 'all_reduce', 4].join(','));
  }
  writeFileSync(join(networkDir, 'all_reduce.csv'), `${net.join('\n')}\n`);
}

describe('fitProfiles', () => {
  writeTables();
  const fitted = fitProfiles(dir, 'synthetic');

  it('recovers the rates that generated the tables', () => {
    const fit = fitted.gpus.fake;
    expect(fit.matmulFlopsPerSecond / truth.matmulFlopsPerSecond).toBeCloseTo(1, 1);
    expect(fit.linearBytesPerSecond / truth.linearBytesPerSecond).toBeCloseTo(1, 1);
    expect(fit.linearLaunchSeconds / truth.linearLaunchSeconds).toBeCloseTo(1, 1);
    for (const op of ELEMENTWISE_OPS) {
      expect(fit.elementwise[op].bytesPerSecond / truth.elementwise[op].bytesPerSecond).toBeCloseTo(1, 1);
    }
    const link = fitted.links['fakenet/all_reduce/4w/4dpn'];
    expect(link.bytesPerSecond / 100e9).toBeCloseTo(1, 1);
    expect(link.latencySeconds / 30e-6).toBeCloseTo(1, 1);
  });

  it('validates within the noise, and flags a profile that is off', () => {
    const good = calibrationReport(fitted, dir);
    expect(good.rows).toHaveLength(COMPUTE_OPS.length + 1);
    expect(good.failing).toEqual([]);
    for (const row of good.rows) expect(row.medianError).toBeLessThan(0.03);
    const slow = {
      ...fitted.gpus.fake,
      matmulFlopsPerSecond: truth.matmulFlopsPerSecond / 2,
      linearBytesPerSecond: truth.linearBytesPerSecond / 2,
    };
    const bad = calibrationReport({ ...fitted, gpus: { fake: slow } }, dir);
    expect(bad.failing.map((row) => row.what).sort()).toEqual([
      'attn_post_proj',
      'attn_pre_proj',
      'mlp_down_proj',
      'mlp_up_proj',
    ]);
    const missing = calibrationReport({ ...fitted, links: {} }, dir);
    expect(missing.unfitted).toEqual(['fakenet/all_reduce/4w/4dpn']);
  });
});
