import { describe, expect, it } from 'vitest';
import { rawFrame } from '../test/raw-frames.ts';
import { decodeFrame, encodeFrame } from './codec.ts';
import type { StepBatch } from './step.ts';

const batch: StepBatch = {
  stepId: 3,
  addedSeqs: [],
  releasedSeqIds: [4],
  seqs: [{ seqId: 1, tokenIds: [7], startPos: 9, blockTable: [0, 2], isSampled: true, outputIndex: 1 }],
  swapOuts: [{ seqId: 4, blockIds: [5, 6], slotIds: [0, 1], numTokens: 20 }],
  swapIns: [],
};

function stepFrame(batchFields: Record<string, unknown>): Uint8Array {
  return rawFrame({ v: 1, tag: 'step', tensors: [], batch: { ...batch, ...batchFields } });
}

describe('step message swap fields', () => {
  it('round-trips swapOuts and swapIns, and stays valid without them', () => {
    const decoded = decodeFrame(encodeFrame({ tag: 'step', batch }));
    expect(decoded.ok && decoded.message).toMatchObject({ tag: 'step', batch });
    const { swapOuts: _, swapIns: __, ...plain } = batch;
    expect(decodeFrame(encodeFrame({ tag: 'step', batch: plain })).ok).toBe(true);
  });

  it('rejects malformed swaps', () => {
    const swap = batch.swapOuts![0]!;
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ swapIns: [{ ...swap, slotIds: [1] }] }, /2 blockIds but 1 slotIds/],
      [{ swapOuts: [{ ...swap, numTokens: 0 }] }, /swapOuts\[0\]\.numTokens/],
      [{ swapOuts: [{ ...swap, blockIds: [], slotIds: [] }] }, /0 blocks cannot hold/],
      [{ swapOuts: [{ ...swap, numTokens: 1 }] }, /2 blocks cannot hold exactly 1/],
      [{ swapOuts: [{ ...swap, blockIds: [5, -6] }] }, /blockIds\[1\]/],
      [{ swapIns: [{ ...swap, extra: 1 }] }, /unexpected field/],
      [{ swapIns: {} }, /swapIns: expected an array/],
    ];
    for (const [fields, pattern] of cases) {
      const result = decodeFrame(stepFrame(fields));
      expect(result.ok).toBe(false);
      if (!result.ok) {
        expect(result.error.code).toBe('badField');
        expect(result.error.message).toMatch(pattern);
      }
    }
  });
});
