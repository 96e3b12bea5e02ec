/**
 * The static Scheduler with several steps in flight (a pipeline's pp): answers applied in any
 * order among the steps in flight, a sequence never in two of them, no KV block shared by two
 * of them, and every request's tokens as with one step at a time.
 */
import type { StepResult } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import type { EngineRequest } from './request.ts';
import { DEFAULT_SAMPLING } from './sampling-params.ts';
import { Scheduler, type SchedulerConfig } from './scheduler.ts';
import type { StepPlan } from './step-plan.ts';

function makeScheduler(overrides: Partial<SchedulerConfig>): Scheduler {
  return new Scheduler({
    numKvBlocks: 64,
    blockSize: 4,
    maxNumBatchedTokens: 32,
    maxNumSeqs: 8,
    maxModelLen: 1000,
    eosTokenIds: [99],
    watermark: 0,
    ...overrides,
  });
}

/** A token that depends only on (sequence, output index): the same whatever the schedule. */
function tokenOf(seqId: number, outputIndex: number): number {
  return 1 + ((seqId * 31 + outputIndex * 7) % 50);
}

function answer(plan: StepPlan): StepResult {
  return {
    stepId: plan.batch.stepId,
    sampled: plan.batch.seqs
      .filter((s) => s.isSampled)
      .map((s) => ({ seqId: s.seqId, tokenId: tokenOf(s.seqId, s.outputIndex) })),
  };
}

function randomRequests(count: number, random: () => number): EngineRequest[] {
  return Array.from({ length: count }, (_, i) => ({
    requestId: `r${i}`,
    promptTokenIds: Array.from(
      { length: 1 + Math.floor(random() * 30) },
      () => 1 + Math.floor(random() * 50),
    ),
    sampling: { ...DEFAULT_SAMPLING, maxTokens: 1 + Math.floor(random() * 20), seed: i },
  }));
}

/** Seeded LCG in [0, 1). */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/**
 * Runs every request, keeping up to maxInFlight steps in flight and answering a random one of
 * them each time; checks the invariants on every step planned.
 */
function runAll(scheduler: Scheduler, requests: EngineRequest[], random: () => number) {
  for (const request of requests) scheduler.addRequest(request, 0);
  const inFlight: StepPlan[] = [];
  const outputs = new Map<string, number[]>();
  let maxSeen = 0;
  while (scheduler.hasUnfinishedRequests()) {
    while (inFlight.length < scheduler.maxInFlight) {
      const plan = scheduler.schedule();
      if (!plan) break;
      const busySeqs = new Set(inFlight.flatMap((p) => p.batch.seqs.map((s) => s.seqId)));
      const busyBlocks = new Set(inFlight.flatMap((p) => p.batch.seqs.flatMap((s) => s.blockTable)));
      for (const seq of plan.batch.seqs) {
        expect(busySeqs.has(seq.seqId), `seq ${seq.seqId} in two steps in flight`).toBe(false);
        for (const block of seq.blockTable)
          expect(busyBlocks.has(block), `block ${block} shared`).toBe(false);
      }
      inFlight.push(plan);
    }
    expect(inFlight.length, 'nothing planned with requests pending').toBeGreaterThan(0);
    maxSeen = Math.max(maxSeen, inFlight.length);
    const [plan] = inFlight.splice(Math.floor(random() * inFlight.length), 1);
    for (const output of scheduler.update(plan, answer(plan), 0))
      outputs.set(output.requestId, output.outputTokenIds);
  }
  return { outputs, maxSeen };
}

describe('Scheduler with steps in flight', () => {
  it.each([2, 3])(
    'maxInFlight %i: disjoint steps, answers in any order, the tokens of one at a time',
    (depth) => {
      const seed = (Date.now() ^ (depth * 7919)) >>> 0;
      console.log(`scheduler in-flight seed ${seed}`);
      const requests = randomRequests(24, lcg(seed));
      // Few blocks: preemption happens with steps in flight.
      const config = { numKvBlocks: 24 };
      const single = runAll(makeScheduler(config), requests, lcg(seed + 1));
      const scheduler = makeScheduler({ ...config, maxInFlight: depth });
      const piped = runAll(scheduler, requests, lcg(seed + 2));
      expect(piped.outputs).toEqual(single.outputs);
      expect(piped.outputs.size).toBe(requests.length);
      expect(piped.maxSeen).toBe(depth);
      expect(scheduler.counters.numPreemptions).toBeGreaterThan(0);
      expect(scheduler.allocator.numUsedBlocks).toBe(0);
    },
  );

  it('splits the running sequences into micro-batches, one per step in flight', () => {
    const scheduler = makeScheduler({ maxInFlight: 2 });
    for (let i = 0; i < 4; i++)
      scheduler.addRequest({ requestId: `d${i}`, promptTokenIds: [1, 2], sampling: DEFAULT_SAMPLING }, 0);
    const prefill = scheduler.schedule()!;
    expect(prefill.batch.seqs.map((s) => s.seqId)).toEqual([0, 1, 2, 3]);
    expect(scheduler.schedule()).toBeNull(); // all four are in flight
    scheduler.update(prefill, answer(prefill), 0);
    const first = scheduler.schedule()!;
    const second = scheduler.schedule()!;
    expect(first.batch.seqs.map((s) => s.seqId)).toEqual([0, 1]);
    expect(second.batch.seqs.map((s) => s.seqId)).toEqual([2, 3]);
    expect(() => scheduler.schedule()).toThrow(/still in flight \(at most 2 at once\)/);
    // Answered out of order.
    scheduler.update(second, answer(second), 0);
    expect(() => scheduler.update(second, answer(second), 0)).toThrow(/step 2 is not in flight/);
    scheduler.update(first, answer(first), 0);
    expect(scheduler.numInFlight).toBe(0);
  });

  it('waits for the steps in flight rather than preempt the only idle sequence', () => {
    // 4 blocks of 4 tokens: a holds 2 (7 tokens), b 2 (8 tokens); b's next token needs a third.
    const scheduler = makeScheduler({ numKvBlocks: 4, maxInFlight: 2 });
    scheduler.addRequest(
      { requestId: 'a', promptTokenIds: [1, 2, 3, 4, 5, 6, 7], sampling: DEFAULT_SAMPLING },
      0,
    );
    scheduler.addRequest(
      { requestId: 'b', promptTokenIds: [1, 2, 3, 4, 5, 6, 7, 8], sampling: DEFAULT_SAMPLING },
      0,
    );
    const prefill = scheduler.schedule()!;
    scheduler.update(prefill, answer(prefill), 0);
    const first = scheduler.schedule()!; // a decodes in its second block
    expect(first.batch.seqs.map((s) => s.seqId)).toEqual([0]);
    expect(scheduler.schedule()).toBeNull(); // b would have to preempt itself: nothing changes
    expect(scheduler.counters.numPreemptions).toBe(0);
    scheduler.update(first, answer(first), 0);
    // Both idle now: a needs a third block too and gets b's, b (the later admitted) is preempted.
    const next = scheduler.schedule()!;
    expect(next.preemptedSeqIds).toEqual([1]);
    expect(next.batch.seqs.map((s) => s.seqId)).toEqual([0]);
  });

  it('plans the next micro-batch on a full cache when its sequences need no new block', () => {
    // 8 blocks of 4 tokens, all held: each of the four sequences has 2 (6 tokens after its
    // prefill), and its next token still fits its second block. Nothing needs preempting.
    const scheduler = makeScheduler({ numKvBlocks: 8, maxInFlight: 2 });
    for (let i = 0; i < 4; i++)
      scheduler.addRequest(
        { requestId: `f${i}`, promptTokenIds: [1, 2, 3, 4, 5], sampling: DEFAULT_SAMPLING },
        0,
      );
    const prefill = scheduler.schedule()!;
    scheduler.update(prefill, answer(prefill), 0);
    const first = scheduler.schedule()!;
    expect(first.batch.seqs.map((s) => s.seqId)).toEqual([0, 1]);
    const second = scheduler.schedule();
    expect(second?.batch.seqs.map((s) => s.seqId)).toEqual([2, 3]);
    expect(scheduler.counters.numPreemptions).toBe(0);
  });
});
