import { Xoshiro128 } from '@seesaw/model';
import type { StepBatch, StepSeq } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { KvFirstTouch } from './kv-first-touch.ts';

const seed = Date.now() % 1_000_000;

function step(stepId: number, seqs: StepSeq[]): StepBatch {
  return { stepId, addedSeqs: [], releasedSeqIds: [], seqs };
}

function seq(seqId: number, startPos: number, numTokens: number, blockTable: number[]): StepSeq {
  return {
    seqId,
    tokenIds: new Array(numTokens).fill(1),
    startPos,
    blockTable,
    isSampled: true,
    outputIndex: 0,
  };
}

describe(`KvFirstTouch (seed ${seed})`, () => {
  it('counts each block the first time a step writes into it, across steps and sequences', () => {
    const touch = new KvFirstTouch(16);
    // A 40-token prompt chunk writes blocks 0..2 of its table; a later decode token at 40 none new.
    expect(touch.newBlocksOfStep(step(1, [seq(0, 0, 40, [7, 3, 9])]))).toBe(3);
    expect(touch.newBlocksOfStep(step(2, [seq(0, 40, 1, [7, 3, 9])]))).toBe(0);
    // Position 48 starts block 3 of the table: one fresh block; a chunk from 16 skips block 0.
    expect(touch.newBlocksOfStep(step(3, [seq(0, 48, 1, [7, 3, 9, 12]), seq(1, 16, 16, [5, 30])]))).toBe(2);
    // A freed block handed to another sequence is no longer fresh.
    expect(touch.newBlocksOfStep(step(4, [seq(2, 0, 16, [30])]))).toBe(0);
    expect(touch.newBlocksOf([30, 31, 31, 32])).toBe(2);
    expect(touch.numTouched).toBe(7);
  });

  it('touches ahead the lowest block ids, counting on across calls, and later writes find them touched', () => {
    const touch = new KvFirstTouch(16);
    expect(touch.newBlocksOf([1])).toBe(1);
    expect(touch.newBlocksAhead(3)).toBe(2); // 0, 1 (already written), 2
    expect(touch.newBlocksAhead(2)).toBe(2); // 3, 4
    expect(touch.newBlocksOf([0, 4, 5])).toBe(1);
    expect(touch.numTouched).toBe(6);
  });

  it('agrees with a set of written block ids on random steps', () => {
    const random = new Xoshiro128(seed);
    const blockSize = 1 + Math.floor(random.nextFloat() * 32);
    const touch = new KvFirstTouch(blockSize);
    const written = new Set<number>();
    for (let s = 0; s < 50; s++) {
      const seqs: StepSeq[] = [];
      let expected = 0;
      const seenThisStep = new Set<number>();
      for (let q = 0; q < 1 + Math.floor(random.nextFloat() * 6); q++) {
        const startPos = Math.floor(random.nextFloat() * 200);
        const n = 1 + Math.floor(random.nextFloat() * 70);
        const table = Array.from({ length: Math.ceil((startPos + n) / blockSize) }, () =>
          Math.floor(random.nextFloat() * 400),
        );
        for (let p = startPos; p < startPos + n; p++) {
          const id = table[Math.floor(p / blockSize)];
          if (!written.has(id) && !seenThisStep.has(id)) {
            seenThisStep.add(id);
            expected++;
          }
        }
        seqs.push(seq(q, startPos, n, table));
      }
      for (const id of seenThisStep) written.add(id);
      expect(touch.newBlocksOfStep(step(s, seqs))).toBe(expected);
    }
    expect(touch.numTouched).toBe(written.size);
  });

  it('names the sequence whose new tokens fall beyond its block table', () => {
    const touch = new KvFirstTouch(16);
    expect(() => touch.newBlocksOfStep(step(5, [seq(4, 10, 10, [1])]))).toThrow(/step 5: sequence 4/);
    expect(() => new KvFirstTouch(0)).toThrow(/positive whole number/);
  });
});
