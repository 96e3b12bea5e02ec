import type { TraceEvent } from '@seesaw/coordinator';
import type { StepBatch } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { type ClusterProfile, clusterPreset } from './hardware.ts';
import { modelCosts } from './model-costs.ts';
import { modelPreset } from './model-presets.ts';
import { replicaLayout } from './replica-layout.ts';
import { DEFAULT_BLOCK_SIZE, InfeasibleConfigError, simulate } from './simulate.ts';
import { batchShapeOf, stepStageSeconds } from './step-cost.ts';
import { constantWorkload, loadWorkload } from './workloads.ts';

const model = modelPreset('llama-2-7b');
const costs = modelCosts(model);

function oneSeqBatch(startPos: number, numTokens: number): StepBatch {
  return {
    stepId: 0,
    addedSeqs: [],
    releasedSeqIds: [],
    seqs: [
      {
        seqId: 0,
        tokenIds: new Array(numTokens).fill(1),
        startPos,
        blockTable: [],
        isSampled: true,
        outputIndex: 0,
      },
    ],
  };
}

describe('simulate', () => {
  it('one request on one device takes its prefill step plus one decode step per further token', async () => {
    const cluster = clusterPreset('1xA100-80GB');
    const report = await simulate(
      model,
      cluster,
      { kind: 'static', parallel: { dp: 1, tp: 1, pp: 1 } },
      constantWorkload(1, 100, 3),
    );
    const layout = replicaLayout(costs, cluster, { dp: 1, tp: 1, pp: 1 }, 0);
    const step = (start: number, n: number) =>
      stepStageSeconds(costs, cluster.device, layout, batchShapeOf(oneSeqBatch(start, n)))[0];
    const want = step(0, 100) + step(100, 1) + step(101, 1);
    expect(report.elapsedSeconds / want - 1).toBeCloseTo(0, 12);
    expect(report.numSteps).toBe(3);
    expect(report.numFinished).toBe(1);
    expect(report.outputTokens).toBe(3);
    expect(report.totalTokensPerSecond).toBeCloseTo(103 / want, 6);
  });

  it('charges the first write into each KV block at the measured first-touch rate, once per block', async () => {
    const base = clusterPreset('1xA100-80GB');
    const rate = 1e8;
    const cluster: ClusterProfile = { ...base, device: { ...base.device, kvFirstTouchBytesPerSecond: rate } };
    const workload = constantWorkload(1, 100, 3);
    const parallel = { dp: 1, tp: 1, pp: 1 };
    const plain = await simulate(model, base, { kind: 'static', parallel }, workload);
    const touched = await simulate(model, cluster, { kind: 'static', parallel }, workload);
    // K/V written at positions 0..101 (prompt, then the first two outputs): 7 blocks of 16.
    const layout = replicaLayout(costs, base, parallel, 0);
    const want = (7 * DEFAULT_BLOCK_SIZE * layout.stages[0].kvBytesPerTokenPerDevice) / rate;
    expect((touched.elapsedSeconds - plain.elapsedSeconds) / want - 1).toBeCloseTo(0, 9);
    // A second request reuses freed blocks: no more first touches than the first one's.
    const two = await simulate(model, cluster, { kind: 'static', parallel }, constantWorkload(2, 100, 3), {
      maxNumSeqs: 1,
    });
    const twoPlain = await simulate(model, base, { kind: 'static', parallel }, constantWorkload(2, 100, 3), {
      maxNumSeqs: 1,
    });
    expect((two.elapsedSeconds - twoPlain.elapsedSeconds) / want - 1).toBeCloseTo(0, 9);
  });

  it('pipelines two virtual engines over two stages (P2 overlaps their steps)', async () => {
    const cluster = clusterPreset('2xA10');
    const workload = constantWorkload(2, 500, 50);
    const p2 = await simulate(
      model,
      cluster,
      { kind: 'static', parallel: { dp: 1, tp: 1, pp: 2 } },
      workload,
    );
    const p2One = await simulate(
      model,
      cluster,
      { kind: 'static', parallel: { dp: 1, tp: 1, pp: 2 } },
      constantWorkload(1, 500, 50),
    );
    // Two requests land on the two virtual engines and overlap: far less than twice one request.
    expect(p2.elapsedSeconds).toBeLessThan(1.2 * p2One.elapsedSeconds);
    expect(p2.numFinished).toBe(2);
  });

  it('DP replicas are independent: D2 with 2n requests takes as long as D1 on one half', async () => {
    const cluster = clusterPreset('2xA10');
    const d2 = await simulate(
      model,
      cluster,
      { kind: 'static', parallel: { dp: 2, tp: 1, pp: 1 } },
      constantWorkload(8, 300, 20),
    );
    const one = await simulate(
      model,
      clusterPreset('1xA10'),
      { kind: 'static', parallel: { dp: 1, tp: 1, pp: 1 } },
      constantWorkload(4, 300, 20),
    );
    expect(d2.elapsedSeconds).toBeCloseTo(one.elapsedSeconds, 9);
    expect(d2.numFinished).toBe(8);
  });

  it('refuses a configuration whose weights do not fit, naming why', () => {
    expect(() =>
      simulate(
        modelPreset('llama-2-70b'),
        clusterPreset('8xA10'),
        { kind: 'static', parallel: { dp: 2, tp: 4, pp: 1 } },
        constantWorkload(1, 10, 1),
      ),
    ).toThrow(InfeasibleConfigError);
    expect(() =>
      simulate(
        model,
        clusterPreset('2xA10'),
        { kind: 'static', parallel: { dp: 1, tp: 3, pp: 1 } },
        constantWorkload(1, 10, 1),
      ),
    ).toThrow(/does not use the cluster's 2 devices/);
  });

  it('counts requests too long for the KV cache as rejected instead of running them', async () => {
    const small: ClusterProfile = {
      ...clusterPreset('1xA10'),
      device: { ...clusterPreset('1xA10').device, memoryBytes: 16.2 * 1024 ** 3 },
    };
    const report = await simulate(
      model,
      small,
      { kind: 'static', parallel: { dp: 1, tp: 1, pp: 1 } },
      {
        name: 'mixed',
        requests: [
          { promptTokens: 100, outputTokens: 10 },
          { promptTokens: 4000, outputTokens: 90 },
        ],
      },
    );
    expect(report.numKvBlocks[0] * 16).toBeLessThan(4090);
    expect(report.numRejected).toBe(1);
    expect(report.numFinished).toBe(1);
  });
});

describe('simulate with a 16-bit KV cache on an f32-computing device (--kv-dtype bf16)', () => {
  it('holds twice the device blocks and host slots in the same memory', async () => {
    const preset = clusterPreset('2xA10');
    const cpuLike: ClusterProfile = { ...preset, device: { ...preset.device, computeBytesPerElement: 4 } };
    const pair = {
      kind: 'seesaw' as const,
      prefill: { dp: 1, tp: 1, pp: 2 },
      decode: { dp: 1, tp: 2, pp: 1 },
    };
    const workload = constantWorkload(4, 64, 4);
    const f32 = await simulate(model, cpuLike, pair, workload);
    const bf16 = await simulate(model, cpuLike, pair, workload, { kvBytesPerElement: 2 });
    for (const layout of [0, 1]) {
      expect(Math.abs(bf16.numKvBlocks[layout] - 2 * f32.numKvBlocks[layout])).toBeLessThanOrEqual(1);
    }
    expect(Math.abs(bf16.numHostSlots - 2 * f32.numHostSlots)).toBeLessThanOrEqual(1);
    expect(f32.numHostSlots).toBeGreaterThan(0);
    expect(bf16.numFinished).toBe(4);
  });
});

describe('simulate a Seesaw pair (the real SeesawScheduler)', () => {
  const cluster = clusterPreset('2xA10');
  const pair = { kind: 'seesaw' as const, prefill: { dp: 1, tp: 1, pp: 2 }, decode: { dp: 1, tp: 2, pp: 1 } };

  function phaseOfSteps(events: TraceEvent[]): void {
    // Steps of a phase lie between re-shards, and no step overlaps a re-shard.
    const reshards = events.filter((e) => e.category === 'reshard').sort((a, b) => a.startMs - b.startMs);
    let phase = 'prefill';
    let next = 0;
    const steps = events.filter((e) => e.track === 'replica 0').sort((a, b) => a.startMs - b.startMs);
    for (const step of steps) {
      while (
        next < reshards.length &&
        reshards[next].startMs + reshards[next].durationMs <= step.startMs + 1e-9
      ) {
        phase = reshards[next].name.endsWith('decode') ? 'decode' : 'prefill';
        next++;
      }
      if (step.category === 'wait') continue;
      expect(step.category).toBe(phase);
      if (next < reshards.length)
        expect(step.startMs + step.durationMs).toBeLessThanOrEqual(reshards[next].startMs + 1e-9);
    }
  }

  it('runs everything, switches phases and records a consistent timeline', async () => {
    const workload = loadWorkload('sharegpt', { numRequests: 60, seed: 3 });
    const report = await simulate(model, cluster, pair, workload, { trace: true });
    expect(report.numFinished).toBe(60);
    expect(report.numSwitches).toBeGreaterThanOrEqual(1);
    expect(report.reshardSeconds).toBeGreaterThan(0);
    expect(report.prefillSeconds + report.decodeSeconds + report.reshardSeconds).toBeCloseTo(
      report.elapsedSeconds,
      6,
    );
    expect(report.outputTokens).toBe(workload.requests.reduce((s, r) => s + r.outputTokens, 0));
    phaseOfSteps(report.events!);
    expect(report.events!.some((e) => e.name === 'write-back')).toBe(true);
    expect(report.events!.some((e) => e.name === 'prefetch')).toBe(true);
  });

  it('the prefill pays the first touch of its blocks, its host slots and (ahead) the decode blocks the prefetches land in', async () => {
    const rate = 1e8;
    const touching: ClusterProfile = {
      ...cluster,
      device: { ...cluster.device, kvFirstTouchBytesPerSecond: rate },
    };
    // Four requests: the first decode step swaps one in, the others are prefetched.
    const workload = constantWorkload(4, 64, 4);
    const plain = await simulate(model, cluster, pair, workload, { trace: true });
    const touched = await simulate(model, touching, pair, workload, { trace: true });
    const prefetch = (report: typeof plain) => report.events!.find((e) => e.name === 'prefetch')!;
    // The decode blocks were touched during the prefill's write-backs (gpu-actor kv-touch-ahead.ts).
    expect(prefetch(touched).durationMs).toBeCloseTo(prefetch(plain).durationMs, 9);
    const { numTokens } = prefetch(touched).args as { numTokens: number };
    const blocks = Math.ceil(numTokens / DEFAULT_BLOCK_SIZE);
    const blocksAhead = Math.ceil((numTokens + 1) / DEFAULT_BLOCK_SIZE);
    const prefill = replicaLayout(costs, cluster, pair.prefill, 0);
    const decode = replicaLayout(costs, cluster, pair.decode, 0);
    // Each P2 stage writes its blocks and its write-backs' host slots for the first time, and
    // touches the decode layout's blocks of the sequences it writes back.
    const prefillTouch =
      (2 * 4 * blocks * DEFAULT_BLOCK_SIZE * prefill.stages[0].kvBytesPerTokenPerDevice) / rate;
    const aheadTouch =
      (4 * blocksAhead * DEFAULT_BLOCK_SIZE * decode.stages[0].kvBytesPerTokenPerDevice) / rate;
    expect(touched.prefillSeconds - plain.prefillSeconds).toBeGreaterThanOrEqual(
      (prefillTouch + aheadTouch) * 0.999,
    );
  });

  it('a smaller host KV tier forces more phase switches', async () => {
    const workload = constantWorkload(40, 1000, 20);
    const big = await simulate(model, cluster, pair, workload);
    const tiny = await simulate(
      model,
      { ...cluster, hostMemoryBytesPerDevice: 0.6 * 1024 ** 3 },
      pair,
      workload,
    );
    // 1.2 GiB of host KV holds about 2.4k tokens of llama-2-7b: two prompts at a time.
    expect(big.numSwitches).toBe(1);
    expect(tiny.numSwitches).toBeGreaterThan(20);
    expect(tiny.numFinished).toBe(40);
    expect(tiny.elapsedSeconds).toBeGreaterThan(big.elapsedSeconds);
  });
});
