import type { StepBatch, StepResult } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { EngineCoreTally } from './engine-core-stats.ts';
import type { ScheduledChunk, StepPlan } from './step-plan.ts';

function plan(chunks: ScheduledChunk[]): StepPlan {
  const batch = { stepId: 0, addedSeqs: [], releasedSeqIds: [], seqs: [] } as StepBatch;
  return { batch, chunks, preemptedSeqIds: [] };
}

const decodeChunk = (seqId: number): ScheduledChunk => ({
  seqId,
  startPos: 9,
  numNewTokens: 1,
  isSampled: true,
});

describe('EngineCoreTally', () => {
  it('splits steps by kind and sums their time and tokens', () => {
    const tally = new EngineCoreTally();
    const result: StepResult = { stepId: 0, sampled: [] };
    expect(tally.countStep(plan([decodeChunk(1), decodeChunk(2)]), result, 4)).toBe(true);
    // A prompt chunk, or a one-token chunk that does not sample, makes a step prefill.
    const prompt = { seqId: 3, startPos: 0, numNewTokens: 7, isSampled: false };
    expect(tally.countStep(plan([decodeChunk(1), prompt]), result, 10)).toBe(false);
    expect(tally.countStep(plan([{ ...decodeChunk(4), isSampled: false }]), result, 1)).toBe(false);
    expect(tally.stats).toMatchObject({
      numDecodeSteps: 1,
      decodeStepMs: 4,
      numDecodeStepTokens: 2,
      numPrefillSteps: 2,
      prefillStepMs: 11,
      numPrefillStepTokens: 9,
    });
  });

  it('sums the KV figures steps report, and the loop-kept times', () => {
    const tally = new EngineCoreTally();
    const kvTimings = {
      computeMs: 5,
      prefetchWaitMs: 1.5,
      prefetchMs: 3,
      writeBackMs: 2,
      writeBackWaitMs: 0.25,
      prefetchesNeeded: 4,
      prefetchesLanded: 3,
      prefetchBytesNeeded: 400,
      prefetchBytesLanded: 300,
    };
    tally.countStep(plan([decodeChunk(1)]), { stepId: 0, sampled: [], kvTimings }, 5);
    tally.countStep(plan([decodeChunk(1)]), { stepId: 1, sampled: [], kvTimings }, 5);
    tally.countStep(plan([decodeChunk(1)]), { stepId: 2, sampled: [] }, 5);
    tally.times.busyMs += 12;
    tally.times.reshardBytes += 64;
    const stats = tally.stats;
    expect(stats).toMatchObject({
      prefetchWaitMs: 3,
      writeBackWaitMs: 0.5,
      kvWaitMs: 3.5,
      prefetchMs: 6,
      writeBackMs: 4,
      prefetchesNeeded: 8,
      prefetchesLanded: 6,
      prefetchBytesNeeded: 800,
      prefetchBytesLanded: 600,
      busyMs: 12,
      reshardBytes: 64,
    });
    // A snapshot: later counting does not change stats already read.
    tally.times.busyMs += 1;
    expect(stats.busyMs).toBe(12);
  });
});
