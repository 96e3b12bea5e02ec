import type { StepResult } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { type EngineRequest, RequestRejectedError } from './request.ts';
import { DEFAULT_SAMPLING, type SamplingParams } from './sampling-params.ts';
import { Scheduler, type SchedulerConfig } from './scheduler.ts';
import type { StepPlan } from './step-plan.ts';

const EOS = 99;

function makeScheduler(overrides: Partial<SchedulerConfig> = {}): Scheduler {
  return new Scheduler({
    numKvBlocks: 64,
    blockSize: 4,
    maxNumBatchedTokens: 512,
    maxNumSeqs: 256,
    maxModelLen: 1000,
    eosTokenIds: [EOS],
    watermark: 0,
    randomSeed: () => 7,
    ...overrides,
  });
}

function request(
  requestId: string,
  promptLength: number,
  sampling: Partial<SamplingParams> = {},
): EngineRequest {
  const promptTokenIds = Array.from({ length: promptLength }, (_, i) => 1 + (i % 50));
  return {
    requestId,
    promptTokenIds,
    sampling: { ...DEFAULT_SAMPLING, maxTokens: 100, seed: 1, ...sampling },
  };
}

/** Answers every sampled row of the plan with `tokenFor(seqId)` (default token 5). */
function answer(plan: StepPlan, tokenFor: (seqId: number) => number = () => 5): StepResult {
  return {
    stepId: plan.batch.stepId,
    sampled: plan.batch.seqs
      .filter((s) => s.isSampled)
      .map((s) => ({ seqId: s.seqId, tokenId: tokenFor(s.seqId) })),
  };
}

function step(scheduler: Scheduler, tokenFor?: (seqId: number) => number) {
  const plan = scheduler.schedule();
  if (!plan) throw new Error('nothing scheduled');
  const outputs = scheduler.update(plan, answer(plan, tokenFor), 0);
  return { plan, batch: plan.batch, outputs };
}

describe('Scheduler token budget and chunked prefill', () => {
  it('chunks prompts to the budget, samples only at the end of a prompt, and decodes one token', () => {
    const scheduler = makeScheduler({ maxNumBatchedTokens: 8 });
    scheduler.addRequest(request('a', 10), 0);
    scheduler.addRequest(request('b', 5), 0);

    const s0 = step(scheduler).batch;
    expect(s0.addedSeqs.map((a) => a.seqId)).toEqual([0]);
    expect(s0.seqs).toHaveLength(1);
    expect(s0.seqs[0]).toMatchObject({ seqId: 0, startPos: 0, isSampled: false, blockTable: [0, 1] });
    expect(s0.seqs[0].tokenIds).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);

    const s1 = step(scheduler).batch;
    expect(s1.addedSeqs.map((a) => a.seqId)).toEqual([1]);
    expect(s1.seqs.map((s) => [s.seqId, s.startPos, s.tokenIds.length, s.isSampled])).toEqual([
      [0, 8, 2, true],
      [1, 0, 5, true],
    ]);
    expect(s1.seqs[0].blockTable).toEqual([0, 1, 2]);
    expect(s1.seqs[1].blockTable).toEqual([3, 4]);

    const s2 = step(scheduler).batch;
    expect(s2.addedSeqs).toEqual([]);
    expect(s2.seqs.map((s) => [s.seqId, s.startPos, s.tokenIds, s.outputIndex])).toEqual([
      [0, 10, [5], 1],
      [1, 5, [5], 1],
    ]);
    // Position 10 still lives in block 2; b's position 5 still in its second block.
    expect(s2.seqs[0].blockTable).toEqual([0, 1, 2]);
    expect(s2.seqs[1].blockTable).toEqual([3, 4]);
  });

  it('never schedules more tokens than the budget, whatever the mix', () => {
    const scheduler = makeScheduler({ maxNumBatchedTokens: 7 });
    for (let i = 0; i < 12; i++)
      scheduler.addRequest(request(`r${i}`, 1 + ((i * 5) % 13), { maxTokens: 4 }), 0);
    let numSteps = 0;
    let numFinished = 0;
    while (scheduler.hasUnfinishedRequests()) {
      const { batch, outputs } = step(scheduler);
      const numTokens = batch.seqs.reduce((n, s) => n + s.tokenIds.length, 0);
      expect(numTokens).toBeGreaterThan(0);
      expect(numTokens).toBeLessThanOrEqual(7);
      numFinished += outputs.length;
      numSteps++;
    }
    expect(numFinished).toBe(12);
    expect(scheduler.allocator.numFreeBlocks).toBe(64);
    expect(scheduler.counters.numSteps).toBe(numSteps);
    expect(scheduler.counters.numOutputTokens).toBe(48);
  });

  it('admits FIFO up to maxNumSeqs and releases finished sequences in the next batch', () => {
    const scheduler = makeScheduler({ maxNumSeqs: 2 });
    scheduler.addRequest(request('a', 3, { maxTokens: 1 }), 0);
    scheduler.addRequest(request('b', 3, { maxTokens: 3 }), 0);
    scheduler.addRequest(request('c', 3, { maxTokens: 1 }), 0);

    const s0 = step(scheduler);
    expect(s0.batch.seqs.map((s) => s.seqId)).toEqual([0, 1]);
    expect(s0.outputs.map((o) => o.requestId)).toEqual(['a']);
    expect(scheduler.numWaiting).toBe(1);

    const s1 = step(scheduler);
    expect(s1.batch.releasedSeqIds).toEqual([0]);
    expect(s1.batch.addedSeqs.map((a) => a.seqId)).toEqual([2]);
    expect(s1.batch.seqs.map((s) => s.seqId)).toEqual([1, 2]);
    expect(s1.outputs.map((o) => o.requestId)).toEqual(['c']);
  });

  it('keeps the watermark free when admitting, waived when nothing runs, without skipping the queue', () => {
    // 20 blocks of 4 tokens, watermark 0.2 -> 4 blocks kept free.
    const scheduler = makeScheduler({ numKvBlocks: 20, watermark: 0.2 });
    expect(scheduler.numWatermarkBlocks).toBe(4);
    scheduler.addRequest(request('a', 40), 0); // 10 blocks
    scheduler.addRequest(request('b', 28), 0); // 7 blocks: 10 - 7 = 3 < 4
    scheduler.addRequest(request('c', 4), 0); // would fit, but must wait behind b
    const s0 = step(scheduler).batch;
    expect(s0.seqs.map((s) => s.seqId)).toEqual([0]);
    expect(scheduler.numWaiting).toBe(2);

    const other = makeScheduler({ numKvBlocks: 20, watermark: 0.2 });
    other.addRequest(request('a', 40), 0);
    other.addRequest(request('b', 24), 0); // 6 blocks: 10 - 6 = 4 >= 4
    expect(step(other).batch.seqs.map((s) => s.seqId)).toEqual([0, 1]);

    // Alone, a sequence may use blocks under the watermark.
    const alone = makeScheduler({ numKvBlocks: 20, watermark: 0.2 });
    alone.addRequest(request('big', 79), 0);
    const plan = alone.schedule()!;
    expect(plan.batch.seqs.map((s) => s.blockTable.length)).toEqual([20]);
    expect(alone.allocator.numFreeBlocks).toBe(0);
  });
});

describe('Scheduler preemption', () => {
  it('preempts the most recently admitted sequence, requeues it at the front, and readmits it for recompute', () => {
    // 2-token blocks, 6 blocks. Three prompts of 3 tokens take all 6 blocks.
    const scheduler = makeScheduler({ blockSize: 2, numKvBlocks: 6, maxModelLen: 12 });
    scheduler.addRequest(request('a', 3, { maxTokens: 4 }), 0);
    scheduler.addRequest(request('b', 3, { maxTokens: 4 }), 0);
    scheduler.addRequest(request('c', 3), 0);
    scheduler.addRequest(request('d', 1), 0);
    const tokenFor = (seqId: number) => 10 + seqId;
    const s0 = step(scheduler, tokenFor).batch; // all three prompts, position 3 fits the held blocks
    expect(s0.seqs.map((s) => s.seqId)).toEqual([0, 1, 2]);
    expect(scheduler.allocator.numFreeBlocks).toBe(0);
    step(scheduler, tokenFor); // decode position 3

    // Position 4 needs a third block for a: c (last admitted) is preempted; b then gets c's other block.
    const s2 = step(scheduler, tokenFor);
    expect(s2.plan.preemptedSeqIds).toEqual([2]);
    expect(s2.batch.releasedSeqIds).toEqual([2]);
    expect(s2.batch.seqs.map((s) => s.seqId)).toEqual([0, 1]);
    expect(s2.batch.addedSeqs).toEqual([]);
    expect(scheduler.numWaiting).toBe(2);

    // a and b finish at 4 outputs (step 3), freeing their blocks; c comes back before d.
    const s3 = step(scheduler, tokenFor);
    expect(s3.outputs.map((o) => o.requestId)).toEqual(['a', 'b']);
    const s4 = step(scheduler, tokenFor).batch;
    expect(s4.releasedSeqIds).toEqual([0, 1]);
    expect(s4.addedSeqs.map((a) => a.seqId)).toEqual([2, 3]);
    expect(s4.addedSeqs[0].sampling).toEqual({ temperature: 1, topP: 1, topK: 0, seed: 1 });
    const recompute = s4.seqs.find((s) => s.seqId === 2)!;
    // c had sampled 2 tokens (12, 12) before being preempted: it recomputes prompt + outputs.
    expect(recompute).toMatchObject({ startPos: 0, isSampled: true, outputIndex: 2 });
    expect(recompute.tokenIds).toEqual([1, 2, 3, 12, 12]);
    expect(recompute.blockTable).toHaveLength(3);

    const outputs = [];
    while (scheduler.hasUnfinishedRequests()) outputs.push(...step(scheduler, tokenFor).outputs);
    const c = outputs.find((o) => o.requestId === 'c')!;
    expect(c.numPreemptions).toBe(1);
    expect(c.outputTokenIds.slice(0, 3)).toEqual([12, 12, 12]);
  });

  it('preempts the sequence itself when it is the most recently admitted', () => {
    // a: 3 tokens (2 blocks, room for position 3); b: 4 tokens (2 full blocks).
    const scheduler = makeScheduler({ blockSize: 2, numKvBlocks: 4 });
    scheduler.addRequest(request('a', 3), 0);
    scheduler.addRequest(request('b', 4), 0);
    step(scheduler);
    const s1 = step(scheduler);
    expect(s1.plan.preemptedSeqIds).toEqual([1]);
    expect(s1.batch.seqs.map((s) => s.seqId)).toEqual([0]);
    expect(s1.batch.releasedSeqIds).toEqual([1]);
    expect(scheduler.numRunning).toBe(1);
    expect(scheduler.allocator.numFreeBlocks).toBe(2);
  });

  it('finishes everything under heavy preemption with every block returned', () => {
    const scheduler = makeScheduler({
      blockSize: 2,
      numKvBlocks: 10,
      maxNumBatchedTokens: 6,
      maxModelLen: 20,
    });
    for (let i = 0; i < 10; i++) scheduler.addRequest(request(`r${i}`, 1 + (i % 7), { maxTokens: 12 }), 0);
    const finished: string[] = [];
    for (let n = 0; scheduler.hasUnfinishedRequests(); n++) {
      expect(n).toBeLessThan(10_000);
      finished.push(...step(scheduler, () => 3).outputs.map((o) => o.requestId));
    }
    expect(finished.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `r${i}`).sort());
    expect(scheduler.counters.numPreemptions).toBeGreaterThan(0);
    expect(scheduler.counters.numRecomputedTokens).toBeGreaterThan(0);
    expect(scheduler.allocator.numFreeBlocks).toBe(10);
  });
});

describe('Scheduler finishing', () => {
  function runAlone(req: EngineRequest, tokens: number[], overrides: Partial<SchedulerConfig> = {}) {
    const scheduler = makeScheduler(overrides);
    scheduler.addRequest(req, 0);
    let index = 0;
    for (;;) {
      const { outputs } = step(scheduler, () => tokens[index++ % tokens.length]);
      if (outputs.length > 0) return outputs[0];
    }
  }

  it('stops on a stop token or EOS and keeps it; ignoreEos skips EOS only', () => {
    expect(runAlone(request('a', 3, { stopTokenIds: [42] }), [1, 2, 42, 4])).toMatchObject({
      outputTokenIds: [1, 2, 42],
      finishReason: 'stop',
    });
    expect(runAlone(request('b', 3), [7, EOS, 8])).toMatchObject({
      outputTokenIds: [7, EOS],
      finishReason: 'stop',
    });
    expect(
      runAlone(request('c', 3, { ignoreEos: true, maxTokens: 4, stopTokenIds: [8] }), [EOS, EOS, 8]),
    ).toMatchObject({ outputTokenIds: [EOS, EOS, 8], finishReason: 'stop' });
  });

  it('stops for length at maxTokens, at maxModelLen, and at the KV cache capacity', () => {
    expect(runAlone(request('a', 3, { maxTokens: 5 }), [1])).toMatchObject({
      outputTokenIds: [1, 1, 1, 1, 1],
      finishReason: 'length',
    });
    expect(runAlone(request('b', 6, { maxTokens: 50 }), [1], { maxModelLen: 8 })).toMatchObject({
      outputTokenIds: [1, 1],
      finishReason: 'length',
    });
    // 3 blocks of 4 = 12 positions: the cap becomes 12 tokens.
    const small = makeScheduler({ numKvBlocks: 3 });
    expect(small.maxModelLen).toBe(12);
    expect(
      runAlone(request('c', 10, { maxTokens: 50 }), [1], { numKvBlocks: 3 }).outputTokenIds,
    ).toHaveLength(2);
    // A stop token on the last allowed token is a stop.
    expect(runAlone(request('d', 3, { maxTokens: 2 }), [1, EOS]).finishReason).toBe('stop');
  });

  it('reports the request, its prompt, preemptions and times', () => {
    const scheduler = makeScheduler();
    scheduler.addRequest(request('a', 2, { maxTokens: 2 }), 100);
    const first = scheduler.schedule()!;
    expect(scheduler.update(first, answer(first), 110)).toEqual([]);
    const second = scheduler.schedule()!;
    expect(scheduler.update(second, answer(second), 125)).toEqual([
      {
        requestId: 'a',
        promptTokenIds: [1, 2],
        outputTokenIds: [5, 5],
        finishReason: 'length',
        numPreemptions: 0,
        arrivalMs: 100,
        firstTokenMs: 110,
        finishMs: 125,
      },
    ]);
    expect(scheduler.hasUnfinishedRequests()).toBe(false);
  });
});

describe('Scheduler requests and protocol', () => {
  it('rejects requests that can never run and queues nothing for them', () => {
    const scheduler = makeScheduler({ numKvBlocks: 4, maxModelLen: 10 }); // cache: 16 tokens
    expect(() => scheduler.addRequest(request('empty', 0), 0)).toThrow(RequestRejectedError);
    expect(() => scheduler.addRequest(request('long', 10), 0)).toThrow(/maxModelLen/);
    expect(() => scheduler.addRequest(request('zero', 3, { maxTokens: 0 }), 0)).toThrow(RequestRejectedError);
    expect(() => scheduler.addRequest(request('topP', 3, { topP: 0 }), 0)).toThrow(RequestRejectedError);
    expect(() => scheduler.addRequest(request('temp', 3, { temperature: -1 }), 0)).toThrow(
      RequestRejectedError,
    );
    expect(() => scheduler.addRequest(request('seed', 3, { seed: 0.5 }), 0)).toThrow(RequestRejectedError);
    const bad = request('neg', 3);
    bad.promptTokenIds[1] = -2;
    expect(() => scheduler.addRequest(bad, 0)).toThrow(RequestRejectedError);
    expect(scheduler.hasUnfinishedRequests()).toBe(false);

    const bigModel = makeScheduler({ numKvBlocks: 4, maxModelLen: 100 });
    expect(() => bigModel.addRequest(request('cache', 16), 0)).toThrow(/KV cache/);
    bigModel.addRequest(request('fits', 15), 0);
    expect(() => bigModel.addRequest(request('fits', 2), 0)).toThrow(/duplicate/);
    expect(bigModel.numWaiting).toBe(1);
  });

  it('gives a null seed a seed from the seed source and passes explicit seeds through', () => {
    const scheduler = makeScheduler({ randomSeed: () => 424242 });
    scheduler.addRequest(request('a', 2, { seed: null, temperature: 0.5, topK: 3, topP: 0.9 }), 0);
    scheduler.addRequest(request('b', 2, { seed: 2 ** 40 }), 0);
    const { addedSeqs } = scheduler.schedule()!.batch;
    expect(addedSeqs).toEqual([
      { seqId: 0, sampling: { temperature: 0.5, topP: 0.9, topK: 3, seed: 424242 } },
      { seqId: 1, sampling: { temperature: 1, topP: 1, topK: 0, seed: 2 ** 40 } },
    ]);
  });

  it('allows one step in flight and checks results against the plan', () => {
    const scheduler = makeScheduler();
    scheduler.addRequest(request('a', 2), 0);
    scheduler.addRequest(request('b', 2), 0);
    const plan = scheduler.schedule()!;
    expect(scheduler.numInFlight).toBe(1);
    expect(() => scheduler.schedule()).toThrow(/in flight/);
    expect(() => scheduler.update(plan, { stepId: plan.batch.stepId + 1, sampled: [] }, 0)).toThrow(
      /result of step/,
    );
    expect(() => scheduler.update(plan, { stepId: plan.batch.stepId, sampled: [] }, 0)).toThrow(/expected 2/);
    const swapped = answer(plan).sampled.reverse();
    expect(() => scheduler.update(plan, { stepId: plan.batch.stepId, sampled: swapped }, 0)).toThrow(
      /expected 0/,
    );
  });

  it('plans nothing (null, no side effects) when nothing is queued, and never switches phase', () => {
    const scheduler = makeScheduler();
    expect(scheduler.schedule()).toBeNull();
    expect(scheduler.numInFlight).toBe(0);
    expect(() => scheduler.schedule()).not.toThrow();
    expect(scheduler.phase).toBeNull();
    expect(scheduler.pendingSwitch()).toBeNull();
    expect(() => scheduler.enterPhase('decode', 8)).toThrow(/no phases/);
  });
});
