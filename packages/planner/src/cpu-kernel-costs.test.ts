import { Xoshiro128 } from '@seesaw/model';
import { describe, expect, it } from 'vitest';
import {
  type CpuKernelProfile,
  cpuLayerComputeSeconds,
  matmulSecondsPerRowParam,
} from './cpu-kernel-costs.ts';
import { modelCosts } from './model-costs.ts';
import { modelPreset } from './model-presets.ts';

function randomProfile(random: Xoshiro128): CpuKernelProfile {
  const matmulRows = [1, 4, 16, 64, 256];
  // Per-row cost falls with rows (weight streaming amortised), as measured.
  let perRow = 1e-9 * (1 + random.nextFloat());
  const matmulSecondsPerRowParam = matmulRows.map(() => {
    const value = perRow;
    perRow *= 0.2 + 0.7 * random.nextFloat();
    return value;
  });
  return {
    matmulRows,
    matmulSecondsPerRowParam,
    elementwiseSecondsPerElement: 1e-10 * (1 + random.nextFloat()),
    decodeAttentionFlopsPerSecond: 1e10 * (1 + random.nextFloat()),
    prefillAttentionFlopsPerSecond: 2e10 * (1 + random.nextFloat()),
  };
}

/** Float64 reference: interpolation written out per segment in log2 space. */
function referencePerRowParam(profile: CpuKernelProfile, rows: number): number {
  const xs = profile.matmulRows;
  const ys = profile.matmulSecondsPerRowParam;
  if (rows <= xs[0]) return (ys[0] * xs[0]) / rows;
  if (rows >= xs[xs.length - 1]) return ys[ys.length - 1];
  for (let i = 0; i + 1 < xs.length; i++) {
    if (rows >= xs[i] && rows <= xs[i + 1]) {
      const t = Math.log2(rows / xs[i]) / Math.log2(xs[i + 1] / xs[i]);
      return ys[i] * (1 - t) + ys[i + 1] * t;
    }
  }
  throw new Error('unreachable');
}

describe('CPU kernel costs', () => {
  const seed = Date.now() >>> 0;

  it('interpolates the measured matmul curve in log(rows) and holds it outside (rel. err < 1e-12)', () => {
    const random = new Xoshiro128(seed);
    for (let trial = 0; trial < 20; trial++) {
      const profile = randomProfile(random);
      profile.matmulRows.forEach((rows, i) => {
        const got = matmulSecondsPerRowParam(profile, rows);
        expect(Math.abs(got / profile.matmulSecondsPerRowParam[i] - 1)).toBeLessThan(1e-12);
      });
      for (const rows of [1, 2, 3, 5, 17, 100, 255, 256, 300, 4096]) {
        const got = matmulSecondsPerRowParam(profile, rows);
        const want = referencePerRowParam(profile, rows);
        expect(Math.abs(got / want - 1), `seed ${seed} trial ${trial} rows ${rows}`).toBeLessThan(1e-12);
      }
    }
  });

  it('sums matmuls, elementwise kernels and attention of one TP rank (float64 reference, rel. err < 1e-9)', () => {
    const random = new Xoshiro128(seed + 1);
    const config = modelPreset('llama-2-7b');
    const costs = modelCosts(config, 2, 4);
    const { hiddenSize: h, intermediateSize: inter, numHeads: hq, numKvHeads: hkv, headDim: d } = config;
    for (let trial = 0; trial < 30; trial++) {
      const profile = randomProfile(random);
      const tp = [1, 2, 4][Math.floor(random.nextFloat() * 3)];
      const tokens = 1 + Math.floor(random.nextFloat() * 600);
      const decodePairs = Math.floor(random.nextFloat() * 5000);
      const prefillPairs = Math.floor(random.nextFloat() * 50000);
      // q, k, v, o, gate, up, down as separate weights of one rank.
      const params = (h * hq * d + 2 * h * hkv * d + hq * d * h + 3 * h * inter) / tp;
      const matmul = tokens * params * referencePerRowParam(profile, tokens);
      const elements = tokens * (2 * h + 2 * h + inter / tp + ((hq + hkv) * d) / tp + (2 * hkv * d) / tp);
      const attention =
        (4 * (hq / tp) * d * decodePairs) / profile.decodeAttentionFlopsPerSecond +
        (4 * (hq / tp) * d * prefillPairs) / profile.prefillAttentionFlopsPerSecond;
      const want = matmul + elements * profile.elementwiseSecondsPerElement + attention;
      const got = cpuLayerComputeSeconds(profile, costs, tp, tokens, decodePairs, prefillPairs);
      expect(Math.abs(got / want - 1), `seed ${seed} trial ${trial}`).toBeLessThan(1e-9);
    }
  });
});
