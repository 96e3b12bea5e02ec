import type { StepBatch, StepResult, StepSeq } from '@seesaw/protocol';
import { expect } from 'vitest';

/** Shared by the sharded-forward tests: drive a sharded and a single device through the same steps. */

export const BLOCK_SIZE = 8;

export interface Device {
  numKvBlocks: number;
  execute(step: StepBatch): Promise<StepResult>;
}

/** max |a - b| / max |b| over all rows. */
function relativeError(actual: Float32Array[], expected: Float32Array[]): number {
  let maxDiff = 0;
  let maxRef = 0;
  expected.forEach((row, r) => {
    for (let i = 0; i < row.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(actual[r][i] - row[i]));
      maxRef = Math.max(maxRef, Math.abs(row[i]));
    }
  });
  return maxDiff / maxRef;
}

interface Tracked {
  seqId: number;
  tokens: number[];
  numCached: number;
  blockTable: number[];
}

/**
 * Drives a sharded and a single device through the same steps: a batched prefill of prompts of
 * 1, 13 and 29 tokens, 5 decode steps, then a 21-token prompt in chunks of 8, 8 and 5 beside
 * decode steps of the others. Returns the worst relative logit error seen: 0 exactly when every
 * logit is bit-identical (the canonical reduction orders of docs/determinism.md).
 */
export async function compareWithSingleDevice(
  sharded: Device,
  single: Device,
  vocabSize: number,
): Promise<number> {
  let nextBlock = Math.min(sharded.numKvBlocks, single.numKvBlocks) - 1;
  let seed = 4242;
  const randomToken = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % vocabSize;
  };
  const track = (seqId: number, length: number): Tracked => ({
    seqId,
    tokens: Array.from({ length }, randomToken),
    numCached: 0,
    blockTable: [],
  });
  const greedy = { temperature: 0, topP: 1, topK: 0, seed: 0 };
  let stepId = 0;
  let worst = 0;
  const runStep = async (work: Array<{ seq: Tracked; numTokens: number }>, isNew: boolean) => {
    const seqs: StepSeq[] = work.map(({ seq, numTokens }) => {
      // Blocks handed out from the top down: block tables neither contiguous nor ascending.
      while (seq.blockTable.length * BLOCK_SIZE < seq.numCached + numTokens) seq.blockTable.push(nextBlock--);
      return {
        seqId: seq.seqId,
        tokenIds: seq.tokens.slice(seq.numCached, seq.numCached + numTokens),
        startPos: seq.numCached,
        blockTable: [...seq.blockTable],
        isSampled: true,
        outputIndex: 0,
      };
    });
    const step: StepBatch = {
      stepId: stepId++,
      addedSeqs: isNew ? work.map(({ seq }) => ({ seqId: seq.seqId, sampling: greedy })) : [],
      releasedSeqIds: [],
      seqs,
      isLogitsReturned: true,
    };
    const expected = await single.execute(step);
    const actual = await sharded.execute(step);
    expect(actual.sampled).toEqual(expected.sampled);
    // Bit-identical logits give exactly 0; any differing bit (even +0 vs -0) gives more.
    if (!sameBits(actual.logits!, expected.logits!)) {
      worst = Math.max(worst, relativeError(actual.logits!, expected.logits!), Number.MIN_VALUE);
    }
    work.forEach(({ seq, numTokens }, i) => {
      seq.numCached += numTokens;
      seq.tokens.push(expected.sampled[i].tokenId);
    });
  };

  const seqs = [track(0, 1), track(1, 13), track(2, 29)];
  await runStep(
    seqs.map((seq) => ({ seq, numTokens: seq.tokens.length })),
    true,
  );
  for (let i = 0; i < 5; i++) {
    await runStep(
      seqs.map((seq) => ({ seq, numTokens: 1 })),
      false,
    );
  }
  const chunked = track(3, 21);
  for (const [i, size] of [8, 8, 5].entries()) {
    await runStep(
      [{ seq: chunked, numTokens: size }, ...seqs.map((seq) => ({ seq, numTokens: 1 }))],
      i === 0,
    );
    // A non-final chunk's sample is not part of the sequence.
    if (i < 2) chunked.tokens.pop();
  }
  return worst;
}

function sameBits(actual: Float32Array[], expected: Float32Array[]): boolean {
  const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
  return (
    actual.length === expected.length &&
    actual.every((a, i) => {
      const x = bits(a);
      const y = bits(expected[i]);
      return x.length === y.length && x.every((value, j) => value === y[j]);
    })
  );
}
