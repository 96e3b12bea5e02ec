/**
 * Seeded sampling with the GPU's help: when every sampled sequence of a step is greedy or keeps
 * a small top-k, the GPU selects each row's k best logits (in the CPU sampler's order) and only
 * those cross to the host, where the CPU sampler's own draw (kernels.sampleRow with the
 * (seed, step) uniform) runs over them. That draw only reads the top-k prefix of the row, in
 * that order, so the token is the one the CPU engine draws from the same logits.
 */
import { type StepSampler, samplingUniform } from '@seesaw/gpu-actor';
import { sampleRow } from '@seesaw/kernels';
import type { StepBatch, StepResult } from '@seesaw/protocol';
import { splitTopK } from './webgpu-kernels.ts';

/** Largest top-k selected on the GPU (its k passes grow with k); beyond it the logits come back. */
export const MAX_GPU_TOP_K = 256;

/**
 * How many candidates per row the GPU must select for this step, or null when a sampled
 * sequence needs its whole row (no top-k, one above MAX_GPU_TOP_K, penalties) or the logits are
 * returned.
 */
export function candidatesNeeded(step: StepBatch, sampler: StepSampler, vocabSize: number): number | null {
  if (step.isLogitsReturned) return null;
  let k = 1;
  for (const seq of step.seqs) {
    if (!seq.isSampled) continue;
    if (sampler.needsWholeRow(seq.seqId)) return null;
    const params = sampler.paramsOf(seq.seqId);
    if (params.temperature <= 0) continue;
    if (params.topK <= 0 || Math.min(params.topK, vocabSize) > MAX_GPU_TOP_K) return null;
    k = Math.max(k, Math.min(params.topK, vocabSize));
  }
  return k;
}

/** The step's answer from the candidates of each sampled row ([numSampled][2k], topKRows' layout). */
export function sampleFromCandidates(
  step: StepBatch,
  sampler: StepSampler,
  candidates: Float32Array,
  k: number,
): StepResult {
  const sampledSeqs = step.seqs.filter((seq) => seq.isSampled);
  if (candidates.length !== sampledSeqs.length * 2 * k) {
    throw new RangeError(`${candidates.length} candidate floats for ${sampledSeqs.length} rows of ${k}`);
  }
  const sampled = sampledSeqs.map((seq, r) => {
    const params = sampler.paramsOf(seq.seqId);
    const { values, ids } = splitTopK(candidates, r, k);
    if (params.temperature <= 0) return { seqId: seq.seqId, tokenId: ids[0] };
    const rowK = Math.min(params.topK, k);
    const uniform = samplingUniform(params.seed, seq.outputIndex);
    const pick = sampleRow(values.slice(0, rowK), params.temperature, rowK, params.topP, uniform);
    return { seqId: seq.seqId, tokenId: ids[pick] };
  });
  return { stepId: step.stepId, sampled };
}
