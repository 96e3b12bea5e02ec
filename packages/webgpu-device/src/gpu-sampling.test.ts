/**
 * GPU-assisted sampling for every mode against the CPU engine's sampler (StepSampler.sample over
 * the whole logits), on random logits with fresh seeds: the GPU selects each row's head (and
 * tail weight), the host draws, and the rows the head cannot decide read their logits back.
 * Tokens must be the CPU's for every row.
 */
import { StepSampler } from '@seesaw/gpu-actor';
import type { AddedSeq, DeviceSamplingParams, StepBatch } from '@seesaw/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { candidatesPlan, sampleFromCandidates, selectCandidates } from './gpu-sampling.ts';
import { WebGpuKernels } from './webgpu-kernels.ts';
import type { GpuTensor } from './webgpu-stream.ts';
import { gpuForTests, makeRng, randomF32, testSeed } from './webgpu-test-support.ts';

const gpu = await gpuForTests();
const rng = makeRng(testSeed());
const VOCAB = 2500;

function samplingOf(i: number): DeviceSamplingParams {
  return {
    temperature: [0, 0.3, 0.8, 1.5][i % 4],
    topK: [0, 0, 40, 300, 5000][i % 5],
    topP: [1, 0.9, 0.6][i % 3],
    seed: Math.floor(rng() * 2 ** 40),
  };
}

/** One step over `rows` sequences, each sampled, with its own settings and output index. */
function stepOf(rows: number): StepBatch {
  const addedSeqs: AddedSeq[] = Array.from({ length: rows }, (_, i) => ({
    seqId: i,
    sampling: samplingOf(i),
  }));
  const seqs = addedSeqs.map(({ seqId }) => ({
    seqId,
    tokenIds: [1],
    startPos: 0,
    blockTable: [0],
    isSampled: true,
    outputIndex: Math.floor(rng() * 1000),
  }));
  return { stepId: 0, addedSeqs, releasedSeqIds: [], seqs };
}

describe.skipIf(gpu === null)('sampling on the GPU against the CPU sampler', () => {
  const kernels = gpu ? new WebGpuKernels(gpu.device) : (null as unknown as WebGpuKernels);
  afterAll(() => gpu?.device.destroy());

  for (const maxK of [32, 256]) {
    it(`greedy, temperature, top-k and top-p rows draw the CPU's tokens (heads of ${maxK})`, async () => {
      let readBack = 0;
      let total = 0;
      for (const scale of [0.5, 4, 12]) {
        const rows = 40;
        const step = stepOf(rows);
        const sampler = new StepSampler(VOCAB);
        sampler.update(step);
        const logits = randomF32(rng, rows * VOCAB, scale);
        const expected = sampler.sample(step, logits.slice()).sampled;
        const plan = candidatesPlan(step, sampler, VOCAB, maxK);
        expect(plan).not.toBeNull();
        const buffers: GpuTensor[] = [];
        const logitsTensor = kernels.upload(logits);
        buffers.push(logitsTensor);
        const result = await sampleFromCandidates(step, sampler, plan!, VOCAB, async (p, rowsToRead) => {
          const selected = await selectCandidates(kernels, logitsTensor, rows, VOCAB, p, rowsToRead, buffers);
          readBack += selected.logitsRows.size;
          return selected;
        });
        for (const b of buffers) b.buffer.destroy();
        total += rows;
        expect(result.sampled).toEqual(expected);
      }
      console.log(`heads of ${maxK}: ${readBack} of ${total} rows read their logits back`);
      expect(readBack).toBeLessThan(total);
    });
  }

  it('a step whose lists all fit in the head needs no tail weights', () => {
    const step = stepOf(1);
    step.addedSeqs[0].sampling = { temperature: 1, topK: 50, topP: 0.9, seed: 3 };
    const sampler = new StepSampler(VOCAB);
    sampler.update(step);
    expect(candidatesPlan(step, sampler, VOCAB)).toEqual({ k: 50, invTemperatures: null });
  });

  it('penalties and log probabilities take the whole row (no plan)', () => {
    const step = stepOf(2);
    step.addedSeqs[1].sampling = { ...step.addedSeqs[1].sampling, numLogprobs: 2 };
    const sampler = new StepSampler(VOCAB);
    sampler.update(step);
    expect(candidatesPlan(step, sampler, VOCAB)).toBeNull();
  });
});
