import { describe, expect, it } from 'vitest';
import { rawFrame } from '../test/raw-frames.ts';
import { decodeFrame, encodeFrame } from './codec.ts';
import { stepDoneMessage, stepResultOf } from './messages/coordinator-device.ts';
import type { StepBatch, StepResult } from './step.ts';

// The tiered-KV step fields: write-backs and prefetches in the step, KV timings in stepDone.

const batch: StepBatch = {
  stepId: 8,
  addedSeqs: [],
  releasedSeqIds: [],
  seqs: [{ seqId: 2, tokenIds: [5, 6, 7], startPos: 0, blockTable: [3], isSampled: true, outputIndex: 0 }],
  kvWriteBacks: [{ seqId: 2, blockIds: [3], slotIds: [11], numTokens: 3 }],
  prefetches: [{ seqId: 9, blockIds: [0, 1], slotIds: [4, 5], numTokens: 17 }],
};

const timings = { computeMs: 3.5, prefetchWaitMs: 0, prefetchMs: 1.25, writeBackMs: 2, writeBackWaitMs: 0.5 };

function expectRejected(frame: Uint8Array, pattern: RegExp): void {
  const result = decodeFrame(frame);
  expect(result.ok).toBe(false);
  if (!result.ok) {
    expect(result.error.code).toBe('badField');
    expect(result.error.message).toMatch(pattern);
  }
}

describe('step message tiered-KV fields', () => {
  it('round-trips kvWriteBacks and prefetches', () => {
    const decoded = decodeFrame(encodeFrame({ tag: 'step', batch }));
    expect(decoded.ok && decoded.message).toMatchObject({ tag: 'step', batch });
  });

  it('rejects malformed write-backs and prefetches', () => {
    const swap = batch.prefetches![0]!;
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ kvWriteBacks: [{ ...swap, slotIds: [4] }] }, /kvWriteBacks\[0\]: 2 blockIds but 1 slotIds/],
      [{ prefetches: [{ ...swap, numTokens: 0 }] }, /prefetches\[0\]\.numTokens/],
      [{ prefetches: [{ ...swap, numTokens: 1 }] }, /2 blocks cannot hold exactly 1/],
      [{ kvWriteBacks: [{ ...swap, slotIds: [4, -1] }] }, /slotIds\[1\]/],
      [{ prefetches: 'all' }, /prefetches: expected an array/],
    ];
    for (const [fields, pattern] of cases)
      expectRejected(rawFrame({ v: 1, tag: 'step', tensors: [], batch: { ...batch, ...fields } }), pattern);
  });
});

describe('stepDone kvTimings', () => {
  it('carries kvTimings through stepDoneMessage / stepResultOf, and leaves it out when absent', () => {
    const result: StepResult = { stepId: 8, sampled: [{ seqId: 2, tokenId: 40 }], kvTimings: timings };
    const { message, tensors } = stepDoneMessage(result);
    const decoded = decodeFrame(encodeFrame(message, tensors));
    if (!decoded.ok || decoded.message.tag !== 'stepDone') throw new Error('decode failed');
    expect(stepResultOf(decoded.message, decoded.tensors)).toEqual(result);
    const plain = stepDoneMessage({ stepId: 9, sampled: [] }).message;
    expect('kvTimings' in plain).toBe(false);
  });

  it('rejects negative, non-finite, missing or unknown timing fields', () => {
    const done = { v: 1, tag: 'stepDone', tensors: [], stepId: 8, sampled: [], hasLogits: false };
    const cases: Array<[unknown, RegExp]> = [
      [{ ...timings, writeBackMs: -1 }, /kvTimings\.writeBackMs/],
      [{ ...timings, computeMs: 'fast' }, /kvTimings\.computeMs/],
      [{ computeMs: 1 }, /kvTimings\.prefetchWaitMs: missing/],
      [{ ...timings, swapMs: 1 }, /kvTimings\.swapMs: unexpected field/],
    ];
    for (const [kvTimings, pattern] of cases) expectRejected(rawFrame({ ...done, kvTimings }), pattern);
    expect(decodeFrame(rawFrame({ ...done, kvTimings: timings })).ok).toBe(true);
  });

  it('checks device spans and a stepKv report the same way', () => {
    const compute = { name: 'compute', startMs: 1000, endMs: 1004 };
    const stepKv = { v: 1, tag: 'stepKv', tensors: [], stepId: 8 };
    const cases: Array<[unknown, RegExp]> = [
      [[{ ...compute, endMs: 999 }], /kvTimings\.spans\[0\]: ends before it starts/],
      [[{ ...compute, name: 'nap' }], /kvTimings\.spans\[0\]\.name/],
      [[{ ...compute, startMs: Number.NaN }], /kvTimings\.spans\[0\]\.startMs/],
    ];
    for (const [spans, pattern] of cases)
      expectRejected(rawFrame({ ...stepKv, kvTimings: { ...timings, spans } }), pattern);
    expectRejected(rawFrame({ ...stepKv }), /kvTimings: missing/);
    expect(decodeFrame(rawFrame({ ...stepKv, kvTimings: { ...timings, spans: [compute] } })).ok).toBe(true);
  });
});
