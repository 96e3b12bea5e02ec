import { Xoshiro128 } from '@seesaw/model';
import type { StepBatch } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { clusterPreset, DEVICE_PRESETS, type DeviceProfile, type LinkProfile } from './hardware.ts';
import { modelCosts } from './model-costs.ts';
import { modelPreset } from './model-presets.ts';
import { replicaLayout } from './replica-layout.ts';
import {
  type BatchShape,
  batchShapeOf,
  layerSeconds,
  sharedCoreStageSeconds,
  stepStageSeconds,
} from './step-cost.ts';

/**
 * The paper's table, written out independently per sequence in float64: for each sequence
 * with n new tokens after `start` cached ones, KV movement and attention are summed token by
 * token (every query attends to all earlier positions and itself).
 */
function referenceLayerSeconds(
  seqs: Array<{ start: number; n: number }>,
  tp: number,
  device: DeviceProfile,
  link: LinkProfile,
): number {
  const cfg = modelPreset('llama-2-70b');
  const { hiddenSize: h, numHeads: hq, numKvHeads: hkv, headDim: d, intermediateSize: m } = cfg;
  const W = h * hq * d + 2 * h * hkv * d + hq * d * h + 3 * h * m + 2 * h;
  const mem = device.memoryBytesPerSecond * device.memoryEfficiency;
  let tokens = 0;
  let kvBytes = 0;
  let attnFlops = 0;
  for (const { start, n } of seqs) {
    tokens += n;
    kvBytes += 2 * n * (hq + 2 * hkv) * d + 2 * (start + n) * 2 * hkv * d;
    for (let i = 0; i < n; i++) attnFlops += 4 * hq * d * (start + i + 1);
  }
  const weights = (2 * W) / tp / mem;
  const linear = (2 * tokens * W) / tp / (device.matmulFlopsPerSecond * device.matmulEfficiency);
  const kv = kvBytes / tp / mem;
  const attention = attnFlops / tp / (device.matmulFlopsPerSecond * device.attentionEfficiency);
  const arBytes = 2 * tokens * h;
  const allReduce =
    tp === 1 ? 0 : 2 * (link.latencySeconds + ((2 * (tp - 1)) / tp) * (arBytes / link.bytesPerSecond));
  return Math.max(weights, linear) + Math.max(kv, attention) + allReduce;
}

function batchOf(seqs: Array<{ start: number; n: number }>): StepBatch {
  return {
    stepId: 0,
    addedSeqs: [],
    releasedSeqIds: [],
    seqs: seqs.map(({ start, n }, i) => ({
      seqId: i,
      tokenIds: new Array(n).fill(1),
      startPos: start,
      blockTable: [],
      isSampled: true,
      outputIndex: 0,
    })),
  };
}

describe('step cost model', () => {
  const costs = modelCosts(modelPreset('llama-2-70b'));
  const cluster = clusterPreset('8xA10');

  it('matches a per-token float64 reference of the paper table on random batches (rel. err < 1e-9)', () => {
    const seed = Date.now() >>> 0;
    const random = new Xoshiro128(seed);
    for (let trial = 0; trial < 50; trial++) {
      const numSeqs = 1 + Math.floor(random.nextFloat() * 8);
      const seqs = Array.from({ length: numSeqs }, () => ({
        start: Math.floor(random.nextFloat() * 3000),
        n: random.nextFloat() < 0.5 ? 1 : 1 + Math.floor(random.nextFloat() * 600),
      }));
      const tp = [1, 2, 4, 8][Math.floor(random.nextFloat() * 4)];
      const got = layerSeconds(costs, cluster.device, tp, cluster.intraHostLink, batchShapeOf(batchOf(seqs)));
      const want = referenceLayerSeconds(seqs, tp, cluster.device, cluster.intraHostLink);
      expect(Math.abs(got / want - 1), `seed ${seed} trial ${trial}`).toBeLessThan(1e-9);
    }
  });

  it('decode of a small batch is bound by weight reads: TP t reads 1/t of them', () => {
    const shape: BatchShape = { numTokens: 4, numSampled: 4, attentionPairs: 4 * 100, contextTokens: 400 };
    const weightSeconds = (costs.layerParams * 2) / (600e9 * 0.8);
    const t1 = layerSeconds(costs, cluster.device, 1, cluster.intraHostLink, shape);
    expect(t1).toBeGreaterThan(weightSeconds);
    expect(t1).toBeLessThan(weightSeconds * 1.05);
    const noLink: LinkProfile = { bytesPerSecond: Number.POSITIVE_INFINITY, latencySeconds: 0 };
    const t4 = layerSeconds(costs, cluster.device, 4, noLink, shape);
    expect(t4 / t1).toBeCloseTo(0.25, 2);
  });

  it('prefill over PCIe: TP pays all-reduces that PP does not (P8 stage faster per token than T8)', () => {
    const shape = batchShapeOf(batchOf([{ start: 0, n: 4096 }]));
    const p8 = stepStageSeconds(
      costs,
      cluster.device,
      replicaLayout(costs, cluster, { dp: 1, tp: 1, pp: 8 }, 0),
      shape,
    );
    const t8 = stepStageSeconds(
      costs,
      cluster.device,
      replicaLayout(costs, cluster, { dp: 1, tp: 8, pp: 1 }, 0),
      shape,
    );
    // Pipelined throughput is bounded by the slowest stage; T8 runs the whole step on one stage.
    expect(Math.max(...p8)).toBeLessThan(t8[0] / 1.5);
    // On NVLink the gap nearly closes.
    const nvlink = clusterPreset('8xA100-nvlink');
    const p8n = stepStageSeconds(
      costs,
      nvlink.device,
      replicaLayout(costs, nvlink, { dp: 1, tp: 1, pp: 8 }, 0),
      shape,
    );
    const t8n = stepStageSeconds(
      costs,
      nvlink.device,
      replicaLayout(costs, nvlink, { dp: 1, tp: 8, pp: 1 }, 0),
      shape,
    );
    expect(t8n[0] / Math.max(...p8n)).toBeLessThan(1.3);
  });

  it('stages on different hosts use the network for activations and TP rings across hosts', () => {
    const twoHosts = clusterPreset('2x4xA10');
    const t8 = replicaLayout(costs, twoHosts, { dp: 1, tp: 8, pp: 1 }, 0);
    expect(t8.stages[0].allReduceLink).toBe(twoHosts.interHostLink);
    const t4p2 = replicaLayout(costs, twoHosts, { dp: 1, tp: 4, pp: 2 }, 0);
    expect(t4p2.stages[0].allReduceLink).toBe(twoHosts.intraHostLink);
    expect(t4p2.stages[0].nextStageLink).toBe(twoHosts.interHostLink);
    expect(t4p2.hosts).toEqual([0, 1]);
    expect(DEVICE_PRESETS.A10.memoryBytes).toBe(24 * 1024 ** 3);
  });

  it('on a measured CPU profile: the kernels summed plus the all-reduces; decode queries at the decode attention rate', () => {
    const cpu: DeviceProfile = {
      ...DEVICE_PRESETS.A10,
      cpuKernels: {
        matmulRows: [1, 16, 256],
        matmulSecondsPerRowParam: [4e-10, 5e-11, 2e-11],
        elementwiseSecondsPerElement: 4e-10,
        decodeAttentionFlopsPerSecond: 1e10,
        prefillAttentionFlopsPerSecond: 3e10,
      },
    };
    const small = modelCosts(modelPreset('llama-2-7b'), 2, 4);
    const link: LinkProfile = { bytesPerSecond: 3e9, latencySeconds: 6e-5 };
    const decode = batchShapeOf(batchOf(Array.from({ length: 16 }, () => ({ start: 99, n: 1 }))));
    expect(decode.decodeAttentionPairs).toBe(16 * 100);
    const prefill = batchShapeOf(batchOf([{ start: 0, n: 16 }]));
    expect(prefill.decodeAttentionPairs).toBe(0);
    const cfg = small.config;
    const allReduce = (tokens: number) =>
      2 * (6e-5 + 0.5 * ((2 * tokens * cfg.hiddenSize * 4) / 2 / 3e9) * 2);
    const attentionFlops = (pairs: number) => (4 * cfg.numHeads * cfg.headDim * pairs) / 2;
    // Same rows and weights; only the attention differs: 1600 decode pairs vs 136 prefill pairs.
    const difference = layerSeconds(small, cpu, 2, link, decode) - layerSeconds(small, cpu, 2, link, prefill);
    const want = attentionFlops(1600) / 1e10 - attentionFlops(136) / 3e10;
    expect(Math.abs(difference / want - 1)).toBeLessThan(1e-9);
    const compute = layerSeconds(small, cpu, 2, link, decode) - allReduce(16);
    expect(compute).toBeGreaterThan(0);
    expect(layerSeconds(small, cpu, 1, link, decode)).toBeGreaterThan(
      layerSeconds(small, cpu, 2, link, decode),
    );
  });

  it('CPU pipeline stages that share cores: matches a fluid processor-sharing run of two stages (rel. err < 1e-3)', () => {
    const random = new Xoshiro128(Date.now() >>> 0);
    for (let trial = 0; trial < 40; trial++) {
      const solo = [0.01 + random.nextFloat(), 0.01 + random.nextFloat()];
      // Company slows each stage by its own factor in [1, 2.5].
      const together = solo.map((x) => x * (1 + 1.5 * random.nextFloat()));
      // Fluid reference: both start together; fraction done grows at 1/together while both work, 1/solo alone.
      const done = [0, 0];
      const finish = [0, 0];
      const dt = 1e-6;
      let t = 0;
      while (done[0] < 1 || done[1] < 1) {
        const both = done[0] < 1 && done[1] < 1;
        for (let s = 0; s < 2; s++) {
          if (done[s] >= 1) continue;
          done[s] += dt / (both ? together[s] : solo[s]);
          if (done[s] >= 1) finish[s] = t + dt;
        }
        t += dt;
      }
      const got = sharedCoreStageSeconds(together, solo);
      for (let s = 0; s < 2; s++)
        expect(Math.abs(got[s] / finish[s] - 1), `trial ${trial}`).toBeLessThan(1e-3);
    }
  });
});
