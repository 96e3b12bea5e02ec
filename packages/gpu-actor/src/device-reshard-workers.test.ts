import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Checkpoint,
  dtypeByteSize,
  generateCheckpoint,
  type ParallelConfig,
  planReshard,
  type ReshardRoute,
  shardSpec,
} from '@seesaw/model';
import type { ReshardDone, StepBatch } from '@seesaw/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PhasedWorkerReplica } from '../test/phased-worker-replica-test-support.ts';
import { BLOCK_SIZE, compareWithSingleDevice } from '../test/sharded-test-support.ts';
import { CpuDevice } from './cpu-device.ts';
import { HeldWeights } from './held-weights.ts';
import { loadModelWeights } from './model-weights.ts';

// Two device workers load P2 (D1T1P2), re-shard to T2 (D1T2P1) and back, by p2p and by host
// (from the checkpoint, or with the host weight cache on from each layout's shard in host memory).
// After every switch their logits match one in-process device on the whole model (the bound the
// TP/PP tests use), each device's weight digest is that of loading its new shard straight from
// the checkpoint (and after P2 -> T2 -> P2 that of the first load), and the bytes each device
// kept, received, sent and read from the host are its plan's.

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');
const RATES = { p2pBytesPerSecond: 4e9, hostBytesPerSecond: 2e9 };
const DEVICE_MEMORY_BYTES = 16 << 20;

function planFor(checkpoint: Checkpoint, from: ParallelConfig, to: ParallelConfig, route: ReshardRoute) {
  return planReshard(
    checkpoint.config,
    (name) => {
      const info = checkpoint.info(name);
      return { dtypeBytes: dtypeByteSize(info.dtype), shape: info.shape };
    },
    from,
    to,
    { route, rates: RATES, deviceMemoryBytes: DEVICE_MEMORY_BYTES },
  );
}

/** Digest of each device's shard under `parallel`, loaded straight from the checkpoint in this thread. */
function directDigests(checkpoint: Checkpoint, parallel: ParallelConfig): string[] {
  return Array.from({ length: parallel.tp * parallel.pp }, (_, device) => {
    const held = new HeldWeights();
    const position = {
      tp: parallel.tp,
      tpRank: device % parallel.tp,
      pp: parallel.pp,
      ppStage: Math.floor(device / parallel.tp),
    };
    loadModelWeights(checkpoint, shardSpec(checkpoint.config, position), held);
    return held.digest();
  });
}

async function compareLogits(dir: string, replica: PhasedWorkerReplica, numKvBlocks: number): Promise<void> {
  const single = await CpuDevice.load(dir, { numThreads: 1, kvCacheBytes: 8 << 20, blockSize: BLOCK_SIZE });
  const sharded = {
    numKvBlocks,
    execute: (step: Parameters<typeof replica.execute>[0]) => replica.execute(step),
  };
  const error = await compareWithSingleDevice(sharded, single, single.config.vocabSize);
  single.close();
  expect(error).toBe(0);
}

function expectPlanFigures(done: ReshardDone[], plan: ReturnType<typeof planFor>, digests: string[]): void {
  done.forEach((answer, device) => {
    const devicePlan = plan.devices[device]!;
    expect(answer.weightDigest, `device ${device} digest`).toBe(digests[device]);
    expect({
      bytesKept: answer.bytesKept,
      bytesReceived: answer.bytesReceived,
      bytesSent: answer.bytesSent,
      bytesFromHost: answer.bytesFromHost,
      peakWeightBytes: answer.peakWeightBytes,
    }).toEqual({
      bytesKept: devicePlan.bytesKept,
      bytesReceived: devicePlan.bytesReceived,
      bytesSent: devicePlan.bytesSent,
      bytesFromHost: devicePlan.bytesFromHost,
      peakWeightBytes: devicePlan.peakWeightBytes,
    });
    expect(answer.numKvBlocks).toBeGreaterThan(0);
    expect(answer.weightBytes + answer.kvCacheBytes).toBeLessThanOrEqual(DEVICE_MEMORY_BYTES);
    expect(answer.ms).toBeGreaterThan(0);
  });
}

/**
 * Loads P2, checks it, then switches P2 -> T2 -> P2 -> T2 -> P2 with the given routes, checking
 * logits, digests and bytes after each switch.
 */
async function roundTrips(dir: string, routes: ReshardRoute[], hostWeightCache = false): Promise<void> {
  const checkpoint = Checkpoint.open(dir);
  const replica = await PhasedWorkerReplica.start({
    modelDir: dir,
    layouts: ['D1T1P2', 'D1T2P1'],
    blockSize: BLOCK_SIZE,
    deviceMemoryBytes: DEVICE_MEMORY_BYTES,
    hostWeightCache,
  });
  try {
    const digests = replica.layouts.map((parallel) => directDigests(checkpoint, parallel));
    const ready = await replica.load(true);
    expect(ready.map((r) => r.weightDigest)).toEqual(digests[0]);
    expect(ready.every((r) => Number.isInteger(r.otherLayoutNumKvBlocks))).toBe(true);
    await compareLogits(dir, replica, Math.min(...ready.map((r) => r.numKvBlocks)));
    for (const [i, route] of routes.entries()) {
      const to = 1 - replica.layout;
      const plan = planFor(checkpoint, replica.layouts[replica.layout]!, replica.layouts[to]!, route);
      const done = await replica.reshard(i + 1, to, plan, true);
      expectPlanFigures(done, plan, digests[to]!);
      // What each device promised at load for the other layout's cache is what it got.
      if (to === 1)
        expect(done.map((d) => d.numKvBlocks)).toEqual(ready.map((r) => r.otherLayoutNumKvBlocks));
      if (route === 'host')
        expect(done.every((d) => d.bytesReceived === 0 && d.bytesFromHost > 0)).toBe(true);
      if (route === 'p2p') expect(done.every((d) => d.bytesFromHost === 0 && d.bytesReceived > 0)).toBe(true);
      // Both layouts' shards were in the host weight cache from load: no switch filled it.
      expect(done.map((d) => d.hostFillMs)).toEqual(done.map(() => undefined));
      expect(done.every((d) => Number.isInteger(d.arenaFallbacks) && d.assembleMs! >= 0)).toBe(true);
      await compareLogits(dir, replica, Math.min(...done.map((d) => d.numKvBlocks)));
    }
    expect(replica.strayErrors).toEqual([]);
  } finally {
    await replica.close();
    checkpoint.close();
  }
}

describe('device workers re-shard between P2 and T2', () => {
  it.each([
    ['off', false],
    ['on', true],
  ])(
    'bf16 fixture, host weight cache %s: P2 -> T2 (p2p) -> P2 (host) -> T2 (host) -> P2 (host) -> T2 (p2p)',
    // With the cache, the third and fourth switches copy host pieces out of it (both layouts are
    // filled by then); every switch's digests must still be a fresh load's.
    (_, hostWeightCache) => roundTrips(FIXTURE, ['p2p', 'host', 'host', 'host', 'p2p'], hostWeightCache),
    60_000,
  );

  it('refuses a reshard with steps queued or a plan it cannot run (still serving), and finishes a running step first', async () => {
    const checkpoint = Checkpoint.open(FIXTURE);
    const replica = await PhasedWorkerReplica.start({
      modelDir: FIXTURE,
      layouts: ['D1T1P2', 'D1T2P1'],
      blockSize: BLOCK_SIZE,
      deviceMemoryBytes: DEVICE_MEMORY_BYTES,
    });
    try {
      await replica.load(false);
      const plan = planFor(checkpoint, replica.layouts[0], replica.layouts[1], 'host');
      const greedy = { temperature: 0, topP: 1, topK: 0, seed: 0 };
      const tokenIds = Array.from({ length: 24 }, (_, i) => 5 + i * 7);
      const blockTable = [0, 1, 2, 3];
      const decodeBatch = (stepId: number, position: number): StepBatch => ({
        stepId,
        addedSeqs: [],
        releasedSeqIds: [],
        seqs: [{ seqId: 1, tokenIds: [9], startPos: position, blockTable, isSampled: true, outputIndex: 1 }],
      });
      const prefill: StepBatch = {
        stepId: 0,
        addedSeqs: [{ seqId: 1, sampling: greedy }],
        releasedSeqIds: [],
        seqs: [{ seqId: 1, tokenIds, startPos: 0, blockTable, isSampled: true, outputIndex: 0 }],
      };
      // Device 1 (stage 1) gets steps 0 and 1 first: it waits for step 0's activations, which
      // device 0 cannot send before it has the steps too, with step 1 queued behind.
      const answers = [prefill, decodeBatch(1, 24)].map((batch) => replica.execute(batch, [1]));
      await expect(replica.postReshard(1, 1, 1, plan)).rejects.toThrow(
        /reshardFailed: reshard 1: 1 step\(s\) are queued/,
      );
      replica.postStep(prefill, [0]);
      replica.postStep(decodeBatch(1, 24), [0]);
      for (const answer of answers) expect((await answer).sampled).toHaveLength(1);
      // Refused up front (another device's plan; a peak beyond the budget): the device keeps serving P2.
      await expect(replica.postReshard(1, 3, 1, plan, plan.devices[0])).rejects.toThrow(
        /reshardFailed: reshard 3: the plan is device 0's, this is device 1/,
      );
      const tooBig = { ...plan.devices[1]!, peakWeightBytes: DEVICE_MEMORY_BYTES + 1 };
      await expect(replica.postReshard(1, 4, 1, plan, tooBig)).rejects.toThrow(
        /outOfMemory: reshard 4: the switch holds up to \d+ bytes of weights/,
      );
      expect((await replica.execute(decodeBatch(3, 25))).sampled).toHaveLength(1);
      // A reshard behind a step device 1 is still running waits for it, then switches.
      const order: string[] = [];
      const lastStep = replica.execute(decodeBatch(4, 26), [1]).then((result) => {
        order.push('step');
        return result;
      });
      const switched = replica.postReshard(1, 2, 1, plan).then((done) => {
        order.push('reshard');
        return done;
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      replica.postStep(decodeBatch(4, 26), [0]);
      const done = [await replica.postReshard(0, 2, 1, plan), await switched];
      expect((await lastStep).sampled).toHaveLength(1);
      expect(order).toEqual(['step', 'reshard']);
      replica.layout = 1;
      await compareLogits(FIXTURE, replica, Math.min(...done.map((d) => d.numKvBlocks)));
      expect(replica.strayErrors).toEqual([]);
    } finally {
      await replica.close();
      checkpoint.close();
    }
  }, 60_000);
});

describe('device workers re-shard a generated f16 checkpoint (tied embeddings, attention bias)', () => {
  let dir = '';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-reshard-workers-'));
    await generateCheckpoint({
      shape: 'tiny',
      seed: 9,
      dtype: 'f16',
      outDir: dir,
      tieWordEmbeddings: true,
      attentionBias: true,
    });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(
    'P2 -> T2 (auto) -> P2 (auto), host weight cache on',
    () => roundTrips(dir, ['auto', 'auto', 'host', 'host'], true),
    60_000,
  );
});
