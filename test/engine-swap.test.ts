import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SAMPLING, Engine, type EngineRequest, type RequestOutput } from '@seesaw/coordinator';
import { CpuDevice } from '@seesaw/gpu-actor';
import { HostKvStore, hostKvLayoutFor } from '@seesaw/kv-store';
import { Checkpoint, generateCheckpoint } from '@seesaw/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Preemption by swapping KV to an in-process host store on a real (tiny) model: a cache too
// small for the workload forces preemptions, every one a swap, and no request's tokens may
// change from running alone, greedy or seeded.

const BLOCK_SIZE = 8;
const NUM_KV_BLOCKS = 12;
let modelDir = '';
let workDir = '';

function makeRequests(seed: number): EngineRequest[] {
  let state = seed;
  const next = (n: number) => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state % n;
  };
  return Array.from({ length: 12 }, (_, i) => ({
    requestId: `s${i}`,
    promptTokenIds: Array.from({ length: 3 + next(45) }, () => 3 + next(2000)),
    sampling: {
      ...DEFAULT_SAMPLING,
      maxTokens: 4 + next(20),
      // Every third request samples with a seed; the rest are greedy.
      temperature: i % 3 === 0 ? 0.9 : 0,
      topK: i % 3 === 0 ? 40 : 0,
      topP: i % 3 === 0 ? 0.95 : 1,
      seed: 2000 + i,
      ignoreEos: i % 2 === 0,
    },
  }));
}

async function runAll(requests: EngineRequest[], numKvBlocks: number, numHostSlots: number) {
  const checkpoint = Checkpoint.open(modelDir);
  const config = checkpoint.config;
  checkpoint.close();
  const bytesPerBlock = config.numLayers * 2 * BLOCK_SIZE * config.numKvHeads * config.headDim * 4;
  const store =
    numHostSlots > 0
      ? new HostKvStore({
          layout: hostKvLayoutFor(config, BLOCK_SIZE),
          capacityBytes: numHostSlots * bytesPerBlock,
        })
      : undefined;
  const device = await CpuDevice.load(modelDir, {
    numThreads: 2,
    blockSize: BLOCK_SIZE,
    kvCacheBytes: numKvBlocks * bytesPerBlock,
    hostKv: store,
  });
  expect(device.numKvBlocks).toBe(numKvBlocks);
  const engine = new Engine(device, {
    maxModelLen: config.maxPositionEmbeddings,
    eosTokenIds: config.eosTokenIds,
    maxNumBatchedTokens: 64,
    hostKv: store && { numSlots: store.numSlots, slotBytes: store.slotBytes },
    preemptionMode: store ? 'swap' : 'recompute',
  });
  for (const request of requests) engine.addRequest(request);
  const outputs = new Map<string, RequestOutput>();
  const stats = await engine.run((output) => outputs.set(output.requestId, output));
  device.close();
  if (store) expect(store.numFreeSlots).toBe(store.numSlots);
  return { outputs, stats };
}

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'seesaw-swap-'));
  modelDir = join(workDir, 'tiny');
  await generateCheckpoint({ shape: 'tiny', seed: 5, dtype: 'bf16', outDir: modelDir });
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe('engine preempting by swap on a real tiny model', () => {
  it('gives every request the same tokens as alone, with swaps and no recompute', async () => {
    const requests = makeRequests(7);
    const alone = new Map<string, RequestOutput>();
    for (const request of requests) {
      const { outputs } = await runAll([request], 64, 0);
      alone.set(request.requestId, outputs.get(request.requestId)!);
    }

    const { outputs, stats } = await runAll(requests, NUM_KV_BLOCKS, 64);
    expect(stats.numSwapOuts).toBeGreaterThan(0);
    expect(stats.numSwapIns).toBe(stats.numSwapOuts);
    expect(stats.numPreemptions).toBe(stats.numSwapOuts);
    expect(stats.numRecomputedTokens).toBe(0);
    expect(stats.swappedBytes).toBeGreaterThan(0);
    for (const request of requests) {
      const expected = alone.get(request.requestId)!;
      const actual = outputs.get(request.requestId)!;
      expect({ id: request.requestId, tokens: actual.outputTokenIds, reason: actual.finishReason }).toEqual({
        id: request.requestId,
        tokens: expected.outputTokenIds,
        reason: expected.finishReason,
      });
    }
    // The workload mixes greedy and seeded requests, and preemption hit some of each.
    const preempted = requests.filter((r) => outputs.get(r.requestId)!.numPreemptions > 0);
    expect(preempted.some((r) => r.sampling.temperature > 0)).toBe(true);
    expect(preempted.some((r) => r.sampling.temperature === 0)).toBe(true);
  });
});
