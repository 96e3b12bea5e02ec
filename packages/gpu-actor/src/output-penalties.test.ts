/**
 * Presence/frequency penalties in the device sampler against a float64 reference of OpenAI's
 * formula, over a sequence's life as the scheduler sends it: prompt chunks, decode steps, a
 * repeated step, and a readmission after preemption (recompute) with its output history.
 */
import type { AddedSeq, DeviceSamplingParams, StepBatch, StepSeq } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { makeRng, randomF32, testSeed } from '../../kernels/test/test-support.ts';
import { StepSampler } from './step-sampler.ts';

const rng = makeRng(testSeed());
const VOCAB = 64;

/** OpenAI's formula in float64: logit[t] - count[t] * frequency - (count[t] > 0) * presence. */
function referencePenalized(
  row: Float32Array,
  outputs: number[],
  presence: number,
  frequency: number,
): number[] {
  const counts = new Map<number, number>();
  for (const id of outputs) counts.set(id, (counts.get(id) ?? 0) + 1);
  return Array.from(row, (logit, id) => {
    const count = counts.get(id) ?? 0;
    return logit - count * frequency - (count > 0 ? presence : 0);
  });
}

function argmax(values: number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

function stepOf(stepId: number, seq: StepSeq, added: AddedSeq[] = [], released: number[] = []): StepBatch {
  return { stepId, addedSeqs: added, releasedSeqIds: released, seqs: [seq] };
}

/** A random token that is already an output half the time, so counts above 1 occur. */
function nextFeedToken(outputs: number[]): number {
  if (outputs.length > 0 && rng() < 0.5) return outputs[Math.floor(rng() * outputs.length)];
  return Math.floor(rng() * VOCAB);
}

describe('presence and frequency penalties in the StepSampler', () => {
  it('greedy picks the float64 reference argmax over a sequence life with a repeat and a recompute', () => {
    const presence = rng() * 4 - 2;
    const frequency = rng() * 4 - 2;
    const sampling: DeviceSamplingParams = {
      temperature: 0,
      topP: 1,
      topK: 0,
      seed: 1,
      presencePenalty: presence,
      frequencyPenalty: frequency,
    };
    const sampler = new StepSampler(VOCAB);
    const prompt = Array.from({ length: 5 }, () => Math.floor(rng() * VOCAB));
    const outputs: number[] = [];
    let stepId = 0;
    const check = (step: StepBatch) => {
      sampler.update(step);
      // Logits with near-ties of penalized and unpenalized tokens, so the penalty decides.
      const row = randomF32(rng, VOCAB, 1);
      const expected = argmax(referencePenalized(row, outputs, presence, frequency));
      const result = sampler.sample(step, row.slice());
      expect(result.sampled[0].tokenId).toBe(expected);
      return expected;
    };
    const added: AddedSeq = {
      seqId: 7,
      sampling,
      outputHistory: { tokenIds: [], nextPosition: prompt.length },
    };
    const promptStep = {
      seqId: 7,
      tokenIds: prompt,
      startPos: 0,
      blockTable: [0],
      isSampled: true,
      outputIndex: 0,
    };
    // The first output is chosen by the model; later outputs are random (the test drives the feed).
    check(stepOf(stepId++, promptStep, [added]));
    outputs.push(nextFeedToken(outputs));
    for (let i = 1; i < 12; i++) {
      const decode = {
        seqId: 7,
        tokenIds: [outputs[i - 1]],
        startPos: prompt.length + i - 1,
        blockTable: [0],
        isSampled: true,
        outputIndex: i,
      };
      check(stepOf(stepId++, decode));
      // A step sent again (a retried step) counts nothing twice.
      if (i === 4) check(stepOf(stepId++, decode));
      outputs.push(nextFeedToken(outputs));
    }
    // Preempted, then readmitted: prompt and outputs recomputed in one chunk.
    const all = [...prompt, ...outputs];
    const readmitted: AddedSeq = {
      seqId: 7,
      sampling,
      outputHistory: { tokenIds: [...outputs], nextPosition: all.length },
    };
    const recompute = {
      seqId: 7,
      tokenIds: all,
      startPos: 0,
      blockTable: [0],
      isSampled: true,
      outputIndex: outputs.length,
    };
    check(stepOf(stepId++, recompute, [readmitted], [7]));
    // A re-shard hands the state to a new sampler, which goes on counting.
    const next = new StepSampler(VOCAB);
    next.restore(sampler.snapshot());
    outputs.push(nextFeedToken(outputs));
    const decode = {
      seqId: 7,
      tokenIds: [outputs.at(-1)!],
      startPos: all.length,
      blockTable: [0],
      isSampled: true,
      outputIndex: outputs.length,
    };
    const step = stepOf(stepId++, decode);
    next.update(step);
    const row = randomF32(rng, VOCAB, 1);
    expect(next.sample(step, row.slice()).sampled[0].tokenId).toBe(
      argmax(referencePenalized(row, outputs, presence, frequency)),
    );
  });

  it('penalized rows equal the float64 reference to float32 rounding, before the temperature draw', () => {
    const sampler = new StepSampler(VOCAB);
    const outputs = Array.from({ length: 30 }, () => Math.floor(rng() * 8));
    const sampling: DeviceSamplingParams = {
      temperature: 0.7,
      topP: 1,
      topK: 1,
      seed: 3,
      presencePenalty: 0.5,
      frequencyPenalty: 0.25,
    };
    const step = stepOf(
      0,
      {
        seqId: 1,
        tokenIds: [outputs.at(-1)!],
        // The last output (position 39) is fed: it is in the history already, so counted once.
        startPos: 39,
        blockTable: [0],
        isSampled: true,
        outputIndex: 30,
      },
      [{ seqId: 1, sampling, outputHistory: { tokenIds: outputs, nextPosition: 40 } }],
    );
    sampler.update(step);
    const row = randomF32(rng, VOCAB, 2);
    const logits = row.slice();
    // top-k 1: the draw is the penalized argmax whatever the temperature.
    const tokenId = sampler.sample(step, logits).sampled[0].tokenId;
    const reference = referencePenalized(row, outputs, 0.5, 0.25);
    for (let id = 0; id < VOCAB; id++)
      expect(Math.abs(logits[id] - reference[id])).toBeLessThanOrEqual(Math.abs(reference[id]) * 2 ** -23);
    expect(tokenId).toBe(argmax(reference));
  });

  it('zero penalties travel as nothing and leave the greedy fast path open', () => {
    const sampler = new StepSampler(VOCAB);
    const plain: DeviceSamplingParams = { temperature: 0, topP: 1, topK: 0, seed: 1 };
    const step = stepOf(
      0,
      { seqId: 2, tokenIds: [1, 2], startPos: 0, blockTable: [0], isSampled: true, outputIndex: 0 },
      [{ seqId: 2, sampling: plain }],
    );
    sampler.update(step);
    expect(sampler.needsLogits(step)).toBe(false);
    expect(sampler.fromGreedyIds(step, Int32Array.of(5)).sampled).toEqual([{ seqId: 2, tokenId: 5 }]);
    const penalized = stepOf(
      1,
      { seqId: 3, tokenIds: [1], startPos: 0, blockTable: [0], isSampled: true, outputIndex: 0 },
      [
        {
          seqId: 3,
          sampling: { ...plain, presencePenalty: 1 },
          outputHistory: { tokenIds: [], nextPosition: 1 },
        },
      ],
    );
    sampler.update(penalized);
    expect(sampler.needsLogits(penalized)).toBe(true);
    expect(() =>
      sampler.update(
        stepOf(2, penalized.seqs[0], [{ seqId: 4, sampling: { ...plain, frequencyPenalty: 1 } }]),
      ),
    ).toThrow('sequence 4 has penalties but its step message carries no outputHistory');
  });
});
