import type { StepResult } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { recomputeSeconds, type SwapCostModel, shouldSwap, swapSeconds } from './preemption-policy.ts';
import type { EngineRequest } from './request.ts';
import { DEFAULT_SAMPLING } from './sampling-params.ts';
import { Scheduler, type SchedulerConfig } from './scheduler.ts';

const SLOT_BYTES = 64; // 2-token slots: 32 bytes of KV per token

function makeScheduler(overrides: Partial<SchedulerConfig> = {}): Scheduler {
  return new Scheduler({
    numKvBlocks: 6,
    blockSize: 2,
    maxNumBatchedTokens: 512,
    maxNumSeqs: 256,
    maxModelLen: 12,
    eosTokenIds: [99],
    watermark: 0,
    hostKv: { numSlots: 8, tokensPerSlot: 2, slotBytes: SLOT_BYTES },
    preemptionMode: 'swap',
    ...overrides,
  });
}

function request(requestId: string, promptLength: number, maxTokens = 100): EngineRequest {
  return {
    requestId,
    promptTokenIds: Array.from({ length: promptLength }, (_, i) => 1 + i),
    sampling: { ...DEFAULT_SAMPLING, maxTokens, seed: 1 },
  };
}

function step(scheduler: Scheduler, tokenFor: (seqId: number) => number = (seqId) => 10 + seqId) {
  const plan = scheduler.schedule();
  if (!plan) throw new Error('nothing scheduled');
  const result: StepResult = {
    stepId: plan.batch.stepId,
    sampled: plan.batch.seqs
      .filter((s) => s.isSampled)
      .map((s) => ({ seqId: s.seqId, tokenId: tokenFor(s.seqId) })),
  };
  return { plan, batch: plan.batch, outputs: scheduler.update(plan, result, 0) };
}

/**
 * Three 3-token prompts fill the 6 two-token blocks; after one decode, a's position 4 needs a
 * block and c (admitted last, 4 tokens computed: prompt + its first output) is preempted.
 */
function preemptC(scheduler: Scheduler) {
  scheduler.addRequest(request('a', 3, 4), 0);
  scheduler.addRequest(request('b', 3, 4), 0);
  scheduler.addRequest(request('c', 3), 0);
  step(scheduler);
  step(scheduler);
  return step(scheduler);
}

describe('Scheduler preemption by swap', () => {
  it('swaps a preempted sequence out to host slots and back in without recompute', () => {
    const scheduler = makeScheduler();
    const s2 = preemptC(scheduler);
    expect(s2.plan.preemptedSeqIds).toEqual([2]);
    expect(s2.batch.releasedSeqIds).toEqual([2]);
    // c held blocks 4 and 5; its 4 computed tokens go to the first two free host slots.
    expect(s2.batch.swapOuts).toEqual([{ seqId: 2, blockIds: [4, 5], slotIds: [0, 1], numTokens: 4 }]);
    expect(s2.batch.swapIns).toBeUndefined();
    // c's blocks are reused in this very step (a and b each take one).
    expect(s2.batch.seqs.flatMap((s) => s.blockTable).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(scheduler.hostAllocator!.slotsOf(2)).toEqual([0, 1]);
    expect(scheduler.numSwappedOut).toBe(1);
    expect(scheduler.numWaiting).toBe(1);

    const s3 = step(scheduler);
    expect(s3.outputs.map((o) => o.requestId)).toEqual(['a', 'b']);
    const s4 = step(scheduler).batch;
    expect(s4.addedSeqs.map((a) => a.seqId)).toEqual([2]);
    const resumed = s4.seqs.find((s) => s.seqId === 2)!;
    // Resumes at position 4 with its last output (12), no recompute of positions 0..3.
    expect(resumed).toMatchObject({ startPos: 4, tokenIds: [12], isSampled: true, outputIndex: 2 });
    expect(s4.swapIns).toEqual([
      { seqId: 2, blockIds: resumed.blockTable.slice(0, 2), slotIds: [0, 1], numTokens: 4 },
    ]);
    expect(s4.swapOuts).toBeUndefined();
    expect(resumed.blockTable).toHaveLength(3);
    // Slots are free again as soon as the swap-in is planned.
    expect(scheduler.hostAllocator!.numUsedSlots).toBe(0);
    expect(scheduler.numSwappedOut).toBe(0);

    const counters = scheduler.counters;
    expect(counters).toMatchObject({
      numPreemptions: 1,
      numSwapOuts: 1,
      numSwapIns: 1,
      numRecomputedTokens: 0,
    });
    expect(counters.swappedBytes).toBe(2 * 4 * (SLOT_BYTES / 2));
    while (scheduler.hasUnfinishedRequests()) step(scheduler);
  });

  it('recomputes when the host tier has no room for the sequence', () => {
    const scheduler = makeScheduler({ hostKv: { numSlots: 1, tokensPerSlot: 2, slotBytes: SLOT_BYTES } });
    const s2 = preemptC(scheduler);
    expect(s2.plan.preemptedSeqIds).toEqual([2]);
    expect(s2.batch.swapOuts).toBeUndefined();
    step(scheduler);
    const s4 = step(scheduler).batch;
    expect(s4.swapIns).toBeUndefined();
    expect(s4.seqs.find((s) => s.seqId === 2)).toMatchObject({ startPos: 0, tokenIds: [1, 2, 3, 12, 12] });
    expect(scheduler.counters).toMatchObject({ numSwapOuts: 0, numSwapIns: 0, swappedBytes: 0 });
    expect(scheduler.counters.numRecomputedTokens).toBe(4);
  });

  it("'auto' recomputes a short sequence and swaps a long one, by the cost model", () => {
    // 4 tokens: recompute 4 * 2 * P / 150e9 vs swap 2 * (50e-6 + 4 * 32 / 5e9) ~ 100 us.
    const cheapModel = makeScheduler({ preemptionMode: 'auto', numModelParams: 1e6 }); // recompute ~53 us
    expect(preemptC(cheapModel).batch.swapOuts).toBeUndefined();
    const bigModel = makeScheduler({ preemptionMode: 'auto', numModelParams: 1e7 }); // recompute ~533 us
    expect(preemptC(bigModel).batch.swapOuts).toHaveLength(1);
    expect(makeScheduler({ hostKv: undefined, preemptionMode: undefined }).preemptionMode).toBe('recompute');
    expect(makeScheduler({ preemptionMode: undefined, numModelParams: 1 }).preemptionMode).toBe('auto');
  });

  it('finishes a heavily preempted workload with every block and host slot returned', () => {
    const scheduler = makeScheduler({
      numKvBlocks: 10,
      maxNumBatchedTokens: 6,
      maxModelLen: 20,
      hostKv: {
        numSlots: 40,
        tokensPerSlot: 2,
        slotBytes: SLOT_BYTES,
      },
    });
    for (let i = 0; i < 10; i++) scheduler.addRequest(request(`r${i}`, 1 + (i % 7), 12), 0);
    let maxUsedSlots = 0;
    for (let n = 0; scheduler.hasUnfinishedRequests(); n++) {
      expect(n).toBeLessThan(10_000);
      const { batch } = step(scheduler, () => 3);
      // A step never both swaps out and in (host slots freed by a swap-in are reused only later).
      expect(batch.swapOuts && batch.swapIns).toBeFalsy();
      maxUsedSlots = Math.max(maxUsedSlots, scheduler.hostAllocator!.numUsedSlots);
    }
    const counters = scheduler.counters;
    expect(counters.numFinishedRequests).toBe(10);
    expect(counters.numSwapOuts).toBeGreaterThan(0);
    expect(counters.numSwapIns).toBe(counters.numSwapOuts);
    expect(counters.numPreemptions).toBe(counters.numSwapOuts);
    expect(counters.numRecomputedTokens).toBe(0);
    expect(maxUsedSlots).toBeGreaterThan(0);
    expect(scheduler.hostAllocator!.numUsedSlots).toBe(0);
    expect(scheduler.allocator.numFreeBlocks).toBe(10);
  });

  it('rejects inconsistent settings', () => {
    expect(() => makeScheduler({ hostKv: undefined })).toThrow(/needs a host KV tier/);
    expect(() => makeScheduler({ preemptionMode: 'auto' })).toThrow(/numModelParams/);
    expect(() => makeScheduler({ hostKv: { numSlots: 4, tokensPerSlot: 4, slotBytes: 8 } })).toThrow(
      /must equal blockSize/,
    );
    expect(() => makeScheduler({ preemptionMode: 'sometimes' as never })).toThrow(/unknown preemptionMode/);
    expect(() =>
      makeScheduler({ preemptionMode: 'auto', numModelParams: 1, hostCopyBytesPerSecond: 0 }),
    ).toThrow(/hostCopyBytesPerSecond/);
  });
});

describe('swap cost model', () => {
  const model: SwapCostModel = {
    numParams: 8e9,
    kvBytesPerToken: 131072,
    computeFlopsPerSecond: 150e9,
    hostCopyBytesPerSecond: 5e9,
    swapLatencySeconds: 50e-6,
  };

  it('prices recompute by weight FLOPs and swap by two copies plus latency', () => {
    expect(recomputeSeconds(model, 100)).toBeCloseTo((100 * 2 * 8e9) / 150e9, 12);
    expect(swapSeconds(model, 100)).toBeCloseTo(2 * (50e-6 + (100 * 131072) / 5e9), 12);
  });

  it('decides by mode, room and cost', () => {
    expect(shouldSwap('auto', model, 100, true)).toBe(true); // 10.7 s vs 5.3 ms
    expect(shouldSwap('auto', model, 100, false)).toBe(false);
    expect(shouldSwap('recompute', model, 100, true)).toBe(false);
    expect(shouldSwap('swap', null, 1, true)).toBe(true);
    expect(shouldSwap('swap', null, 0, true)).toBe(false);
    // A tiny model with fat KV: copying dwarfs its compute.
    const tiny = { ...model, numParams: 1e5, kvBytesPerToken: 1 << 20 };
    expect(shouldSwap('auto', tiny, 1000, true)).toBe(false);
    expect(() => shouldSwap('auto', null, 10, true)).toThrow(/cost model/);
  });
});
