/**
 * StepSampler.sampleAcrossRanks: tensor-parallel ranks each draw a share of the rows and
 * all-gather the ids. Every rank's answer must equal one sampler's sample() of the same step
 * (greedy, temperature with top-k / top-p, penalties, log probabilities, returned logits, an
 * unsampled prompt chunk), and the greedy ids the float64 argmax of the (penalised) rows.
 */
import type { AddedSeq, DeviceSamplingParams, StepBatch, StepSeq } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { makeRng, randomF32, testSeed } from '../../kernels/test/test-support.ts';
import { InProcessGroup } from './in-process-group.ts';
import { StepSampler } from './step-sampler.ts';

const rng = makeRng(testSeed());
const VOCAB = 5000;

function samplingOf(i: number): DeviceSamplingParams {
  const base = { temperature: 0, topP: 1, topK: 0, seed: 100 + i };
  switch (i % 5) {
    case 0:
      return base;
    case 1:
      return { ...base, temperature: 0.8 };
    case 2:
      return { ...base, temperature: 1.2, topK: 40, topP: 0.9 };
    case 3:
      return { ...base, presencePenalty: 0.7, frequencyPenalty: 0.3 };
    default:
      return { ...base, temperature: 1, numLogprobs: 3 };
  }
}

/** A step of `numSeqs` sequences (one unsampled prompt chunk among them), every one added. */
function stepOf(numSeqs: number, isLogitsReturned: boolean): StepBatch {
  const added: AddedSeq[] = [];
  const seqs: StepSeq[] = [];
  for (let i = 0; i < numSeqs; i++) {
    const tokenIds = Array.from({ length: 3 }, () => Math.floor(rng() * VOCAB));
    const sampling = samplingOf(i);
    const hasPenalty = sampling.presencePenalty !== undefined;
    added.push({
      seqId: i,
      sampling,
      ...(hasPenalty ? { outputHistory: { tokenIds: tokenIds.slice(0, 2), nextPosition: 0 } } : {}),
    });
    seqs.push({ seqId: i, tokenIds, startPos: 0, blockTable: [i], isSampled: i !== 2, outputIndex: i });
  }
  return { stepId: 7, addedSeqs: added, releasedSeqIds: [], seqs, isLogitsReturned };
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (Number(row[i]) > Number(row[best])) best = i;
  return best;
}

describe('StepSampler.sampleAcrossRanks', () => {
  for (const [size, numSeqs] of [
    [2, 9],
    [2, 1],
    [3, 8],
  ] as const) {
    it(`gives every one of ${size} ranks one device's answer for ${numSeqs} sequences`, async () => {
      for (const isLogitsReturned of [false, true]) {
        const step = stepOf(numSeqs, isLogitsReturned);
        const numSampled = step.seqs.filter((seq) => seq.isSampled).length;
        const logits = randomF32(rng, numSampled * VOCAB, 4);
        const one = new StepSampler(VOCAB);
        one.update(step);
        const expected = one.sample(step, logits.slice());
        const groups = InProcessGroup.create(size);
        const answers = await Promise.all(
          groups.map((group) => {
            const sampler = new StepSampler(VOCAB);
            sampler.update(step);
            return sampler.sampleAcrossRanks(step, logits.slice(), group);
          }),
        );
        for (const answer of answers) expect(answer).toEqual(expected);
        // Greedy rows without penalties: the float64 argmax of the raw row.
        step.seqs
          .filter((seq) => seq.isSampled)
          .forEach((seq, i) => {
            const params = samplingOf(seq.seqId);
            if (params.temperature > 0 || params.presencePenalty !== undefined) return;
            expect(answers[0].sampled[i].tokenId).toBe(argmax(logits.subarray(i * VOCAB, (i + 1) * VOCAB)));
          });
      }
    });
  }

  it('reads only the rows rowsReadAcrossRanks names (all of them when a result returns rows)', async () => {
    // Sequences 4 and 9 ask for log probabilities: without them a rank reads only its share.
    for (const numSeqs of [4, 9]) {
      for (const isLogitsReturned of [false, true]) {
        const step = stepOf(numSeqs, isLogitsReturned);
        const numSampled = step.seqs.filter((seq) => seq.isSampled).length;
        const logits = randomF32(rng, numSampled * VOCAB, 4);
        const one = new StepSampler(VOCAB);
        one.update(step);
        const expected = one.sample(step, logits.slice());
        const answers = await Promise.all(
          InProcessGroup.create(2).map((group) => {
            const sampler = new StepSampler(VOCAB);
            sampler.update(step);
            const rows = sampler.rowsReadAcrossRanks(step, group);
            if (numSeqs === 4 && !isLogitsReturned) expect(rows).toBeDefined();
            else expect(rows).toBeUndefined();
            // Rows it does not read hold garbage (NaN), as a TP rank's logits do there.
            const partial = new Float32Array(logits.length).fill(Number.NaN);
            const { start, end } = rows ?? { start: 0, end: numSampled };
            partial.set(logits.subarray(start * VOCAB, end * VOCAB), start * VOCAB);
            return sampler.sampleAcrossRanks(step, partial, group);
          }),
        );
        for (const answer of answers) expect(answer).toEqual(expected);
      }
    }
  });

  it('gathers nothing for a step without sampled rows', async () => {
    const step: StepBatch = {
      ...stepOf(1, false),
      seqs: [{ ...stepOf(1, false).seqs[0], isSampled: false }],
    };
    const answers = await Promise.all(
      InProcessGroup.create(2).map((group) => {
        const sampler = new StepSampler(VOCAB);
        sampler.update(step);
        return sampler.sampleAcrossRanks(step, new Float32Array(0), group);
      }),
    );
    for (const answer of answers) expect(answer).toEqual({ stepId: 7, sampled: [] });
  });
});
