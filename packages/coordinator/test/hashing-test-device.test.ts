import type { StepBatch, StepSeq } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { HashingTestDevice } from './hashing-test-device.ts';

const GREEDY = { temperature: 0, topP: 1, topK: 0, seed: 0 };

function device(): HashingTestDevice {
  return new HashingTestDevice({ numKvBlocks: 8, blockSize: 2, vocabSize: 1 << 30 });
}

function seq(
  seqId: number,
  tokenIds: number[],
  startPos: number,
  blockTable: number[],
  outputIndex = 0,
): StepSeq {
  return { seqId, tokenIds, startPos, blockTable, isSampled: true, outputIndex };
}

function batch(stepId: number, seqs: StepSeq[], added: number[] = [], released: number[] = []): StepBatch {
  return {
    stepId,
    addedSeqs: added.map((seqId) => ({ seqId, sampling: GREEDY })),
    releasedSeqIds: released,
    seqs,
  };
}

describe('HashingTestDevice', () => {
  it('samples a token that depends on every cached token, not on the physical blocks or chunking', async () => {
    const one = device();
    const whole = await one.execute(batch(0, [seq(0, [1, 2, 3, 4, 5], 0, [3, 1, 6])], [0]));
    const chunked = device();
    await chunked.execute(batch(0, [{ ...seq(0, [1, 2], 0, [0]), isSampled: false }], [0]));
    const rest = await chunked.execute(batch(1, [seq(0, [3, 4, 5], 2, [0, 5, 2])]));
    expect(rest.sampled).toEqual(whole.sampled);

    const changed = device();
    const other = await changed.execute(batch(0, [seq(0, [1, 2, 9, 4, 5], 0, [3, 1, 6])], [0]));
    expect(other.sampled[0].tokenId).not.toBe(whole.sampled[0].tokenId);
  });

  it('mixes (seed, outputIndex) into non-greedy rows only', async () => {
    const run = async (temperature: number, seed: number, outputIndex: number) => {
      const d = device();
      const b = batch(0, [seq(0, [1, 2, 3], 0, [0, 1], outputIndex)]);
      b.addedSeqs = [{ seqId: 0, sampling: { ...GREEDY, temperature, seed } }];
      return (await d.execute(b)).sampled[0].tokenId;
    };
    expect(await run(0, 1, 0)).toBe(await run(0, 2, 5));
    expect(await run(1, 1, 0)).not.toBe(await run(1, 2, 0));
    expect(await run(1, 1, 0)).not.toBe(await run(1, 1, 1));
  });

  it('throws when a sequence reads a freed block written by another sequence', async () => {
    const d = device();
    await d.execute(batch(0, [seq(0, [1, 2, 3], 0, [4, 5])], [0]));
    // Seq 0 is released; seq 1 writes position 0 into block 4, then (a block-table bug)
    // reads it back through block 5, whose slot 0 still holds seq 0's position 2.
    await d.execute(batch(1, [{ ...seq(1, [7], 0, [4]), isSampled: false }], [1], [0]));
    await expect(d.execute(batch(2, [seq(1, [8], 1, [5])]))).rejects.toThrow(/did not write/);
  });

  it('throws when a readmitted sequence reads its own K/V from before the preemption', async () => {
    const d = device();
    await d.execute(batch(0, [seq(0, [1, 2, 3], 0, [4, 5])], [0]));
    await d.execute(batch(1, [seq(1, [8], 0, [0])], [1], [0]));
    await expect(d.execute(batch(2, [seq(0, [9], 3, [4, 5])], [0]))).rejects.toThrow(/startPos 3/);
  });

  it('throws when the next step does not feed back the token just sampled', async () => {
    const d = device();
    const first = await d.execute(batch(0, [seq(0, [1, 2, 3], 0, [0, 1])], [0]));
    const wrong = first.sampled[0].tokenId + 1;
    await expect(d.execute(batch(1, [seq(0, [wrong], 3, [0, 1], 1)]))).rejects.toThrow(/was sampled/);
  });

  it('throws on blocks shared by live sequences, bad block tables and unknown sequences', async () => {
    const shared = device();
    await shared.execute(batch(0, [seq(0, [1, 2], 0, [1])], [0]));
    await expect(shared.execute(batch(1, [seq(1, [1], 0, [1])], [1]))).rejects.toThrow(/two live/);

    const short = device();
    await expect(short.execute(batch(0, [seq(0, [1, 2, 3], 0, [1])], [0]))).rejects.toThrow(/block table/);

    const unknown = device();
    await expect(unknown.execute(batch(0, [seq(3, [1], 0, [1])]))).rejects.toThrow(/not added/);
    await expect(unknown.execute(batch(1, [], [], [3]))).rejects.toThrow(/unknown seq/);
  });
});
