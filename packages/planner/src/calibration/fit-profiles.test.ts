import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type LinkProfile, linkBytesPerSecond } from '../hardware.ts';
import { calibrationReport } from './calibration-report.ts';
import {
  COMPUTE_OPS,
  ELEMENTWISE_OPS,
  LINEAR_OPS,
  type NetworkSample,
  type OpModelShape,
} from './calibration-tables.ts';
import { predictCollectiveSeconds } from './fit-profiles.ts';
import { fitProfiles } from './fitted-profiles.ts';
import {
  type GpuOpFit,
  isLinearOp,
  type LinearRates,
  layerLinearWork,
  opWork,
  predictLayerLinearSeconds,
  predictOpSeconds,
} from './gpu-op-model.ts';

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

// The linear ops share one set of rates (so the planner's one-roofline layer form can hold
// their sum); each elementwise op's rates change past a working-set size, as on a GPU whose L2
// holds small sets.
const linearTruth = { matmulFlopsPerSecond: 200e12, bytesPerSecond: 1.5e12, launchSeconds: 12e-6 };
const truth: GpuOpFit = {
  layer: linearTruth,
  linear: Object.fromEntries(
    LINEAR_OPS.map((op) => [
      op,
      { small: linearTruth, large: linearTruth, largeFromBytes: Number.MAX_VALUE },
    ]),
  ) as GpuOpFit['linear'],
  elementwise: Object.fromEntries(
    ELEMENTWISE_OPS.map((op, i) => [
      op,
      {
        small: { bytesPerSecond: (1.5 + 0.2 * i) * 1e12, launchSeconds: (2 + i) * 1e-6 },
        large: { bytesPerSecond: (0.5 + 0.2 * i) * 1e12, launchSeconds: (2 + i) * 1e-6 },
        largeFromBytes: 16e6,
      },
    ]),
  ) as GpuOpFit['elementwise'],
};
// A cross-host send whose bandwidth falls from 8 GB/s to 2.5 GB/s around 4 MB.
const trueSend: LinkProfile = {
  bytesPerSecond: 8e9,
  latencySeconds: 15e-6,
  largeMessages: { fromBytes: 4e6, bytesPerSecond: 2.5e9, sharpness: 4 },
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
  const send = ['time_stats.send_recv.median,num_workers,size,collective,devices_per_node'];
  for (let size = 2048; size <= 2 ** 26; size = Math.ceil(size * 1.15)) {
    const seconds = trueSend.latencySeconds + size / linkBytesPerSecond(trueSend, size);
    send.push([seconds * 1e3 * jitter(), 2, size, 'send_recv', 1].join(','));
  }
  writeFileSync(join(networkDir, 'send_recv.csv'), `${send.join('\n')}\n`);
}
describe('fitProfiles', () => {
  writeTables();
  const fitted = fitProfiles(dir, 'synthetic');

  it('predicts shapes it was not fitted to from the recovered rates', () => {
    const fit = fitted.gpus.fake;
    // Token counts between the fitted powers of two, at every TP degree. Rows between the true
    // and the fitted split are left out: the training rows cannot say where in that gap it lies.
    // A one-regime model misses the small-set elementwise rows by 2-3x, so 12% tells them apart.
    for (const tp of [1, 2, 4, 8])
      for (const tokens of [3, 24, 96, 384, 1536, 3000])
        for (const op of COMPUTE_OPS) {
          const work = opWork(op, shape, tokens, tp);
          const split = isLinearOp(op) ? Number.MAX_VALUE : fit.elementwise[op].largeFromBytes;
          const trueSplit = isLinearOp(op) ? Number.MAX_VALUE : 16e6;
          if (work.bytes >= Math.min(split, trueSplit) && work.bytes < Math.max(split, trueSplit)) continue;
          const ratio = predictOpSeconds(fit, op, work) / predictOpSeconds(truth, op, work);
          expect(Math.abs(ratio - 1), `${op} tp${tp} ${tokens} tokens`).toBeLessThan(0.12);
        }
    // The layer form against the true sum of the four linear ops (a sum of rooflines is not
    // quite one roofline: the ops reach their knees at different token counts).
    for (const tp of [1, 2, 4, 8])
      for (const tokens of [3, 24, 96, 384, 1536, 3000]) {
        const sum = LINEAR_OPS.reduce(
          (t, op) => t + predictOpSeconds(truth, op, opWork(op, shape, tokens, tp)),
          0,
        );
        const layer = predictLayerLinearSeconds(fit.layer, layerLinearWork(shape, tokens, tp));
        expect(Math.abs(layer / sum - 1), `layer tp${tp} ${tokens} tokens`).toBeLessThan(0.1);
      }
    for (const op of ELEMENTWISE_OPS) {
      const { small, large, largeFromBytes } = fit.elementwise[op];
      expect(small.bytesPerSecond / truth.elementwise[op].small.bytesPerSecond).toBeCloseTo(1, 1);
      expect(large.bytesPerSecond / truth.elementwise[op].large.bytesPerSecond).toBeCloseTo(1, 1);
      // The split lies between the sizes either side of the true one (tokens double per row).
      expect(largeFromBytes).toBeGreaterThan(16e6 / 2);
      expect(largeFromBytes).toBeLessThanOrEqual(16e6 * 2);
    }
    const at = (collective: NetworkSample['collective'], numWorkers: number, sizeBytes: number) => ({
      cluster: 'fakenet',
      collective,
      numWorkers,
      devicesPerNode: numWorkers,
      sizeBytes,
      medianMs: 0,
    });
    const allReduce = fitted.links['fakenet/all_reduce/4w/4dpn'];
    const trueAllReduce: LinkProfile = { bytesPerSecond: 100e9, latencySeconds: 30e-6 };
    const send = fitted.links['fakenet/send_recv/2w/1dpn'];
    for (const size of [64e3, 1e6, 3e6, 5e6, 20e6, 60e6]) {
      const reduce = at('all_reduce', 4, size);
      expect(
        predictCollectiveSeconds(allReduce, reduce) / predictCollectiveSeconds(trueAllReduce, reduce),
      ).toBeCloseTo(1, 1);
      const sent = at('send_recv', 2, size);
      expect(predictCollectiveSeconds(send, sent) / predictCollectiveSeconds(trueSend, sent)).toBeCloseTo(
        1,
        1,
      );
    }
  });

  it('validates within the noise, and flags a profile that is off', () => {
    const good = calibrationReport(fitted, dir);
    expect(good.rows).toHaveLength(COMPUTE_OPS.length + 1 + 2);
    expect(good.failing).toEqual([]);
    for (const row of good.rows) expect(row.medianError).toBeLessThan(0.04);
    const halve = (r: LinearRates): LinearRates => ({
      ...r,
      matmulFlopsPerSecond: r.matmulFlopsPerSecond / 2,
      bytesPerSecond: r.bytesPerSecond / 2,
    });
    const slow: GpuOpFit = {
      ...fitted.gpus.fake,
      layer: halve(fitted.gpus.fake.layer),
      linear: Object.fromEntries(
        LINEAR_OPS.map((op) => {
          const r = fitted.gpus.fake.linear[op];
          return [op, { ...r, small: halve(r.small), large: halve(r.large) }];
        }),
      ) as GpuOpFit['linear'],
    };
    const bad = calibrationReport({ ...fitted, gpus: { fake: slow } }, dir);
    expect(bad.failing.map((row) => row.what).sort()).toEqual([
      'attn_post_proj',
      'attn_pre_proj',
      'linear layer (plan)',
      'mlp_down_proj',
      'mlp_up_proj',
    ]);
    const missing = calibrationReport({ ...fitted, links: {} }, dir);
    expect(missing.unfitted).toEqual(['fakenet/all_reduce/4w/4dpn', 'fakenet/send_recv/2w/1dpn']);
  });
});
