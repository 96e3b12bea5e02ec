import { join } from 'node:path';
import {
  expectedTensors,
  loadModelConfig,
  type ModelConfig,
  type ParallelConfig,
  planReshard,
} from '@seesaw/model';
import { describe, expect, it } from 'vitest';
import { clusterPreset } from './hardware.ts';
import { modelCosts } from './model-costs.ts';
import { modelPreset } from './model-presets.ts';
import { replicaLayout } from './replica-layout.ts';
import { estimateReshard } from './reshard-cost.ts';

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');
const cluster = clusterPreset('8xA10');

function estimate(
  config: ModelConfig,
  from: ParallelConfig,
  to: ParallelConfig,
  route: 'p2p' | 'host' | 'auto',
) {
  const costs = modelCosts(config);
  return estimateReshard(
    costs,
    cluster,
    replicaLayout(costs, cluster, from, 0),
    replicaLayout(costs, cluster, to, 0),
    route,
  );
}

describe('re-shard cost estimate', () => {
  it('moves nothing between identical layouts', () => {
    const result = estimate(
      modelPreset('llama-2-70b'),
      { dp: 1, tp: 4, pp: 2 },
      { dp: 1, tp: 4, pp: 2 },
      'auto',
    );
    expect(result.bytesMoved).toBe(0);
    expect(result.seconds).toBe(0);
  });

  it('agrees with the engine re-shard planner (planReshard) on bytes moved, tiny fixture, every 4-device pair', () => {
    const config = loadModelConfig(FIXTURE);
    const shapes = new Map(expectedTensors(config).map((t) => [t.name, t.shape]));
    const layouts: ParallelConfig[] = [
      { dp: 1, tp: 1, pp: 4 },
      { dp: 1, tp: 2, pp: 2 },
      { dp: 1, tp: 4, pp: 1 },
    ];
    for (const from of layouts) {
      for (const to of layouts) {
        if (from === to) continue;
        const plan = planReshard(config, (name) => ({ dtypeBytes: 2, shape: shapes.get(name)! }), from, to, {
          route: 'p2p',
          rates: { p2pBytesPerSecond: 16e9, hostBytesPerSecond: 16e9 },
        });
        const ours = estimate(config, from, to, 'p2p');
        // Norm vectors are whole on every TP rank in the engine; the estimate splits every
        // layer tensor by TP share, a difference of about 2h / layerParams.
        expect(
          Math.abs(ours.bytesMoved / plan.bytesMoved - 1),
          `${JSON.stringify(from)} -> ${JSON.stringify(to)}`,
        ).toBeLessThan(3e-3);
      }
    }
  });

  it('P8 -> T8 for 70B: every device fetches 7/8 of its new shard; host reload costs about a second per device (paper)', () => {
    const config = modelPreset('llama-2-70b');
    const costs = modelCosts(config);
    const host = estimate(config, { dp: 1, tp: 1, pp: 8 }, { dp: 1, tp: 8, pp: 1 }, 'host');
    // Each T8 device holds 1/8 of every layer and of the LM head, and the whole embedding;
    // what its P8 stage held covers one eighth of that in total: 7 shards' worth move.
    const embedding = costs.embeddingParams * 2;
    const t8Shard = (costs.totalWeightBytes - embedding) / 8 + embedding;
    expect(host.bytesMoved / (7 * t8Shard)).toBeCloseTo(1, 6);
    expect(host.bytesFromHost).toBe(host.bytesMoved);
    expect(host.seconds).toBeGreaterThan(0.5);
    expect(host.seconds).toBeLessThan(1.5);
    const auto = estimate(config, { dp: 1, tp: 1, pp: 8 }, { dp: 1, tp: 8, pp: 1 }, 'auto');
    expect(auto.seconds).toBeLessThanOrEqual(host.seconds);
  });

  it('uses the measured re-shard links of a profile over the all-reduce and KV links when given', () => {
    const costs = modelCosts(modelPreset('llama-2-7b'));
    const peer = { bytesPerSecond: 1e9, latencySeconds: 0 };
    const hostRead = { bytesPerSecond: 2e9, latencySeconds: 0 };
    const measured = {
      ...clusterPreset('2xA10'),
      reshardPeerLink: peer,
      device: { ...clusterPreset('2xA10').device, reshardHostLink: hostRead },
    };
    const from = replicaLayout(costs, measured, { dp: 1, tp: 1, pp: 2 }, 0);
    const to = replicaLayout(costs, measured, { dp: 1, tp: 2, pp: 1 }, 0);
    const p2p = estimateReshard(costs, measured, from, to, 'p2p');
    const host = estimateReshard(costs, measured, from, to, 'host');
    // Host: the slowest device's incoming bytes at the host-read rate; p2p moves at least as many at half the rate.
    expect(p2p.seconds).toBeGreaterThanOrEqual(host.seconds * 2 * 0.999);
    expect(host.seconds).toBeCloseTo((host.bytesMoved / 2) * (1 / 2e9), 1);
    expect(estimateReshard(costs, measured, from, to, 'auto').seconds).toBeCloseTo(host.seconds, 9);
  });

  it('adds the measured assembly of the whole new shard, per device', () => {
    const costs = modelCosts(modelPreset('llama-2-7b'));
    const base = clusterPreset('2xA10');
    const assembly = { bytesPerSecond: 0.5e9, latencySeconds: 1e-3 };
    const measured = { ...base, device: { ...base.device, reshardWeightAssembly: assembly } };
    const from = replicaLayout(costs, measured, { dp: 1, tp: 1, pp: 2 }, 0);
    const to = replicaLayout(costs, measured, { dp: 1, tp: 2, pp: 1 }, 0);
    const withParts = estimateReshard(costs, measured, from, to, 'host');
    const linkOnly = estimateReshard(costs, base, from, to, 'host');
    // Either T2 rank holds half of every layer and of the LM head, and the whole embedding.
    const { layerParams, headParams, embeddingParams, config } = costs;
    const shardBytes = ((config.numLayers * layerParams + headParams) / 2 + embeddingParams) * 2;
    expect(withParts.parts.assemblySeconds).toBeCloseTo(1e-3 + shardBytes / 0.5e9, 9);
    expect(withParts.parts.transferSeconds).toBeCloseTo(linkOnly.seconds, 9);
    expect(withParts.seconds).toBeCloseTo(
      withParts.parts.transferSeconds + withParts.parts.assemblySeconds,
      9,
    );
    expect(linkOnly.parts).toEqual({ transferSeconds: linkOnly.seconds, assemblySeconds: 0 });
    // No re-shard, no local work either.
    expect(estimateReshard(costs, measured, to, to, 'host').seconds).toBe(0);
  });
});
