import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Checkpoint, generateCheckpoint, loadReferenceWeights, ReferenceModel } from '@seesaw/model';
import type { StepSeq } from '@seesaw/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuDevice } from './cpu-device.ts';

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');
// f32 activations and accumulation against float64 over 4 layers: errors near 1e-5 of the
// logits' scale; 1e-3 leaves room for summation order without hiding a wrong index.
const RELATIVE_TOLERANCE = 1e-3;
const BLOCK_SIZE = 8;

function relativeError(actual: Float32Array, expected: Float64Array): number {
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i] - expected[i]));
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  return maxDiff / maxRef;
}

function argmax(row: Float64Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** A sequence under test: its reference model, its blocks (deliberately scattered) and its tokens. */
interface Tracked {
  seqId: number;
  reference: ReferenceModel;
  tokens: number[];
  numCached: number;
  blockTable: number[];
}

interface Case {
  name: string;
  dir: () => string;
}

let workDir = '';
beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'seesaw-cpu-device-'));
  await generateCheckpoint({
    shape: 'tiny',
    seed: 7,
    dtype: 'f16',
    outDir: join(workDir, 'tiny-f16-bias-tied'),
    attentionBias: true,
    tieWordEmbeddings: true,
  });
  await generateCheckpoint({ shape: 'tiny', seed: 11, dtype: 'f32', outDir: join(workDir, 'tiny-f32') });
}, 60_000);
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

const cases: Case[] = [
  { name: 'outside bf16 fixture', dir: () => FIXTURE },
  { name: 'generated f16, attention bias, tied embeddings', dir: () => join(workDir, 'tiny-f16-bias-tied') },
  { name: 'generated f32', dir: () => join(workDir, 'tiny-f32') },
];

describe.each(cases)('CpuDevice logits against the float64 reference ($name)', ({ dir }) => {
  it('matches on a batched prefill of different lengths, then decode steps, then a chunked prompt', async () => {
    const device = await CpuDevice.load(dir(), {
      numThreads: 2,
      kvCacheBytes: 64 * 1024 * 1024,
      blockSize: BLOCK_SIZE,
    });
    const checkpoint = Checkpoint.open(dir());
    const weights = loadReferenceWeights(checkpoint);
    checkpoint.close();
    const { config } = device;

    // Blocks handed out from the top down, so block tables are neither contiguous nor ascending.
    let nextBlock = device.numKvBlocks - 1;
    const grow = (seq: Tracked, numTokens: number) => {
      while (seq.blockTable.length * BLOCK_SIZE < numTokens) seq.blockTable.push(nextBlock--);
    };
    let seed = 12345;
    const randomToken = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % config.vocabSize;
    };
    const track = (seqId: number, promptLength: number): Tracked => ({
      seqId,
      reference: new ReferenceModel(config, weights),
      tokens: Array.from({ length: promptLength }, randomToken),
      numCached: 0,
      blockTable: [],
    });

    const greedy = { temperature: 0, topP: 1, topK: 0, seed: 0 };
    const seqs = [track(0, 1), track(1, 13), track(2, 29)];
    let stepId = 0;
    const runStep = async (work: Array<{ seq: Tracked; numTokens: number }>, isNew: boolean) => {
      const stepSeqs: StepSeq[] = work.map(({ seq, numTokens }) => {
        const tokenIds = seq.tokens.slice(seq.numCached, seq.numCached + numTokens);
        grow(seq, seq.numCached + numTokens);
        return {
          seqId: seq.seqId,
          tokenIds,
          startPos: seq.numCached,
          blockTable: [...seq.blockTable],
          isSampled: true,
          outputIndex: 0,
        };
      });
      const result = await device.execute({
        stepId: stepId++,
        addedSeqs: isNew ? work.map(({ seq }) => ({ seqId: seq.seqId, sampling: greedy })) : [],
        releasedSeqIds: [],
        seqs: stepSeqs,
        isLogitsReturned: true,
      });
      work.forEach(({ seq, numTokens }, i) => {
        const expected = seq.reference.forward(seq.tokens.slice(seq.numCached, seq.numCached + numTokens));
        seq.numCached += numTokens;
        const lastExpected = expected[expected.length - 1];
        const actual = result.logits![i];
        expect(relativeError(actual, lastExpected)).toBeLessThan(RELATIVE_TOLERANCE);
        expect(result.sampled[i]).toEqual({ seqId: seq.seqId, tokenId: argmax(lastExpected) });
        seq.tokens.push(argmax(lastExpected));
      });
    };

    await runStep(
      seqs.map((seq) => ({ seq, numTokens: seq.tokens.length })),
      true,
    );
    for (let i = 0; i < 5; i++)
      await runStep(
        seqs.map((seq) => ({ seq, numTokens: 1 })),
        false,
      );

    // A 21-token prompt in chunks of 8, 8 and 5, each chunk beside a decode step of the others.
    const chunked = track(3, 21);
    const chunks = [8, 8, 5];
    for (const [i, size] of chunks.entries()) {
      await runStep(
        [{ seq: chunked, numTokens: size }, ...seqs.map((seq) => ({ seq, numTokens: 1 }))],
        i === 0,
      );
      // The device samples after every chunk here; only the last chunk's token is the model's answer.
      if (i < chunks.length - 1) chunked.tokens.pop();
    }
    device.close();
  });
});

describe('CpuDevice sampling', () => {
  it('draws the same tokens for a seeded request whatever its batch neighbours', async () => {
    const device = await CpuDevice.load(FIXTURE, {
      numThreads: 1,
      kvCacheBytes: 16 * 1024 * 1024,
      blockSize: 16,
    });
    const sampling = { temperature: 1.5, topP: 0.9, topK: 50, seed: 99 };
    const prompt = [5, 17, 300, 1200, 44];
    const alone = await device.execute({
      stepId: 0,
      addedSeqs: [{ seqId: 1, sampling }],
      releasedSeqIds: [],
      seqs: [{ seqId: 1, tokenIds: prompt, startPos: 0, blockTable: [0], isSampled: true, outputIndex: 3 }],
    });
    const batched = await device.execute({
      stepId: 1,
      addedSeqs: [
        { seqId: 2, sampling: { ...sampling, seed: 7 } },
        { seqId: 3, sampling },
      ],
      releasedSeqIds: [1],
      seqs: [
        { seqId: 2, tokenIds: [9, 9, 9], startPos: 0, blockTable: [1], isSampled: true, outputIndex: 3 },
        { seqId: 3, tokenIds: prompt, startPos: 0, blockTable: [2], isSampled: true, outputIndex: 3 },
      ],
    });
    expect(batched.sampled[1].tokenId).toBe(alone.sampled[0].tokenId);
    device.close();
  });

  it('rejects token ids outside the vocabulary and blocks outside the cache', async () => {
    const device = await CpuDevice.load(FIXTURE, {
      numThreads: 1,
      kvCacheBytes: 4 * 1024 * 1024,
      blockSize: 16,
    });
    const sampling = { temperature: 0, topP: 1, topK: 0, seed: 0 };
    const step = (tokenIds: number[], blockTable: number[]) =>
      device.execute({
        stepId: 0,
        addedSeqs: [{ seqId: 1, sampling }],
        releasedSeqIds: [],
        seqs: [{ seqId: 1, tokenIds, startPos: 0, blockTable, isSampled: true, outputIndex: 0 }],
      });
    await expect(step([2048], [0])).rejects.toThrow(/outside the vocabulary/);
    await expect(step([1, 2], [device.numKvBlocks])).rejects.toThrow(/outside \[0, /);
    await expect(step(Array(17).fill(1), [0])).rejects.toThrow(/cannot hold 17 tokens/);
  });
});
