import { beforeAll, describe, expect, it } from 'vitest';
import { HashingTestDevice } from '../test/hashing-test-device.ts';
import { Engine, type EngineOptions } from './engine.ts';
import type { EngineRequest, RequestOutput } from './request.ts';
import { DEFAULT_SAMPLING } from './sampling-params.ts';

// Preemption by swap on the KV-checking hash device: the device really moves each
// sequence's slot contents to a host map and back, so a wrong block, slot or token count in
// a swap changes the tokens or trips the device's checks.

const VOCAB = 40;
const EOS = 0;
const MAX_MODEL_LEN = 96;
const SLOT_BYTES = 1024;

function requests(seed: number, count: number): EngineRequest[] {
  let state = seed >>> 0;
  const int = (lo: number, hi: number) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return lo + (state % (hi - lo + 1));
  };
  return Array.from({ length: count }, (_, i) => ({
    requestId: `q${i}`,
    promptTokenIds: Array.from({ length: int(1, 40) }, () => int(1, VOCAB - 1)),
    sampling: {
      ...DEFAULT_SAMPLING,
      maxTokens: int(1, 40),
      temperature: i % 3 === 0 ? 0 : 0.8,
      seed: int(0, 1 << 30),
      ignoreEos: i % 2 === 0,
    },
  }));
}

async function run(
  workload: EngineRequest[],
  numKvBlocks: number,
  blockSize: number,
  numHostSlots: number,
  options: Partial<EngineOptions>,
) {
  const device = new HashingTestDevice({ numKvBlocks, blockSize, vocabSize: VOCAB, numHostSlots });
  const engine = new Engine(device, {
    maxModelLen: MAX_MODEL_LEN,
    eosTokenIds: [EOS],
    hostKv: numHostSlots > 0 ? { numSlots: numHostSlots, slotBytes: SLOT_BYTES } : undefined,
    ...options,
  });
  for (const request of workload) engine.addRequest(request);
  const outputs = new Map<string, RequestOutput>();
  const stats = await engine.run((out) => outputs.set(out.requestId, out));
  expect(engine.scheduler.allocator.numFreeBlocks).toBe(numKvBlocks);
  expect(engine.scheduler.hostAllocator?.numUsedSlots ?? 0).toBe(0);
  expect(device.numUsedHostSlots).toBe(0);
  return { outputs, stats, device };
}

function expectSameTokens(actual: Map<string, RequestOutput>, expected: Map<string, RequestOutput>) {
  expect(actual.size).toBe(expected.size);
  for (const [requestId, want] of expected) {
    const got = actual.get(requestId)!;
    expect({ requestId, tokens: got.outputTokenIds, reason: got.finishReason }).toEqual({
      requestId,
      tokens: want.outputTokenIds,
      reason: want.finishReason,
    });
  }
}

describe('Engine with preemption by swap', () => {
  const workload = requests(5, 30);
  const alone = new Map<string, RequestOutput>();
  beforeAll(async () => {
    for (const request of workload) {
      const { outputs } = await run([request], 64, 16, 0, { maxNumBatchedTokens: 4096 });
      alone.set(request.requestId, outputs.get(request.requestId)!);
    }
  });

  it("'swap' with a roomy host tier: same tokens as alone, no recompute", async () => {
    for (const [numKvBlocks, blockSize, budget] of [
      [12, 8, 512],
      [25, 4, 16],
      [100, 1, 9],
    ]) {
      const numHostSlots = 4 * numKvBlocks;
      const { outputs, stats, device } = await run(workload, numKvBlocks, blockSize, numHostSlots, {
        maxNumBatchedTokens: budget,
        preemptionMode: 'swap',
      });
      expectSameTokens(outputs, alone);
      expect(stats.numSwapOuts).toBeGreaterThan(0);
      expect(stats.numSwapIns).toBe(stats.numSwapOuts);
      expect(stats.numPreemptions).toBe(stats.numSwapOuts);
      expect(stats.numRecomputedTokens).toBe(0);
      expect(device.numSwapOuts).toBe(stats.numSwapOuts);
      expect(device.numSwapIns).toBe(stats.numSwapIns);
      // Each swap copies a whole sequence prefix: at least one token each way.
      expect(stats.swappedBytes).toBeGreaterThanOrEqual(2 * stats.numSwapOuts * (SLOT_BYTES / blockSize));
      const numPromptTokens = workload.reduce((n, r) => n + r.promptTokenIds.length, 0);
      const numFedBack = [...outputs.values()].reduce((n, o) => n + o.outputTokenIds.length - 1, 0);
      expect(stats.numScheduledTokens).toBe(numPromptTokens + numFedBack);
    }
  });

  it('a small host tier mixes swap and recompute and still gives the same tokens', async () => {
    const { outputs, stats } = await run(workload, 25, 4, 6, {
      maxNumBatchedTokens: 16,
      preemptionMode: 'swap',
    });
    expectSameTokens(outputs, alone);
    expect(stats.numSwapOuts).toBeGreaterThan(0);
    expect(stats.numPreemptions).toBeGreaterThan(stats.numSwapOuts);
    expect(stats.numRecomputedTokens).toBeGreaterThan(0);
  });

  it("'auto' follows the cost model: a big model swaps, a tiny one recomputes", async () => {
    const big = await run(workload, 25, 4, 100, { maxNumBatchedTokens: 16, numModelParams: 1e9 });
    expectSameTokens(big.outputs, alone);
    expect(big.stats.numSwapOuts).toBe(big.stats.numPreemptions);
    expect(big.stats.numSwapOuts).toBeGreaterThan(0);
    const tiny = await run(workload, 25, 4, 100, { maxNumBatchedTokens: 16, numModelParams: 10 });
    expectSameTokens(tiny.outputs, alone);
    expect(tiny.stats.numPreemptions).toBeGreaterThan(0);
    expect(tiny.stats.numSwapOuts).toBe(0);
  });

  it('the device rejects a swap it cannot honour', async () => {
    const device = new HashingTestDevice({ numKvBlocks: 4, blockSize: 2, vocabSize: VOCAB });
    const sampling = { temperature: 0, topP: 1, topK: 0, seed: 0 };
    await device.execute({
      stepId: 0,
      addedSeqs: [{ seqId: 1, sampling }],
      releasedSeqIds: [],
      seqs: [
        { seqId: 1, tokenIds: [3, 4, 5], startPos: 0, blockTable: [0, 1], isSampled: true, outputIndex: 0 },
      ],
    });
    const swap = { seqId: 1, blockIds: [0, 1], slotIds: [0, 1], numTokens: 3 };
    // No host slots at all.
    await expect(
      device.execute({ stepId: 1, addedSeqs: [], releasedSeqIds: [1], seqs: [], swapOuts: [swap] }),
    ).rejects.toThrow(/bad host slot/);
    const roomy = new HashingTestDevice({ numKvBlocks: 4, blockSize: 2, vocabSize: VOCAB, numHostSlots: 4 });
    // Swap-in of slots nothing was swapped out to.
    await expect(
      roomy.execute({
        stepId: 0,
        addedSeqs: [{ seqId: 1, sampling }],
        releasedSeqIds: [],
        seqs: [],
        swapIns: [swap],
      }),
    ).rejects.toThrow(/does not hold its position 0/);
  });
});
