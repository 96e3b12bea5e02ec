/**
 * Seeded sampling with the GPU's help, for every mode (greedy, temperature, top-k, top-p): the
 * GPU selects each sampled row's k best logits in the CPU sampler's order (topKRows) and, when a
 * row's candidate list is longer than k, the f32 weight of the rest (tailWeights). Only those
 * cross to the host, which makes the CPU sampler's own (seed, step) draw:
 * - a row whose whole candidate list fits in k: kernels.sampleRow over the head, exact (the draw
 *   only reads the top-k prefix of the row, in that order);
 * - a longer list (no top-k, or one above k): drawFromHead, which answers only when the tail's
 *   bounds cannot change the token; the rare row it cannot decide has its logits read back and
 *   drawn by sampleRow. Either way the token is the one the CPU engine draws from these logits.
 * Penalties and log probabilities need whole rows: those steps return the logits (null plan).
 */
import { type StepSampler, samplingUniform } from '@seesaw/gpu-actor';
import { sampleRow } from '@seesaw/kernels';
import type { StepBatch, StepResult } from '@seesaw/protocol';
import { drawFromHead } from './certified-draw.ts';
import { splitTopK, type WebGpuKernels } from './webgpu-kernels.ts';
import type { GpuTensor } from './webgpu-stream.ts';

/** Largest head selected on the GPU (its k passes grow with k). */
export const MAX_GPU_TOP_K = 256;

/** What the GPU selects for a step: each sampled row's k best, and the tail weights if needed. */
export interface CandidatesPlan {
  k: number;
  /** 1 / temperature per sampled row (0 for greedy rows), or null when every list fits in k. */
  invTemperatures: Float32Array | null;
}

/** The GPU's answer: [numSampled][2k] candidates (+ [numSampled] tail weights), and logits rows read back. */
export interface GpuCandidates {
  candidates: Float32Array;
  logitsRows: Map<number, Float32Array>;
}

/** Runs the step's forward pass and selection; rowsToRead gets the candidates and names the rows whose logits it needs. */
export type CandidatesRun = (
  plan: CandidatesPlan,
  rowsToRead: (candidates: Float32Array) => number[],
) => Promise<GpuCandidates>;

/**
 * The step's selection plan, or null when a sampled sequence needs its whole row (penalties,
 * log probabilities) or the logits are returned.
 */
export function candidatesPlan(
  step: StepBatch,
  sampler: StepSampler,
  vocabSize: number,
  maxK = MAX_GPU_TOP_K,
): CandidatesPlan | null {
  if (step.isLogitsReturned) return null;
  const sampledSeqs = step.seqs.filter((seq) => seq.isSampled);
  let k = 1;
  let hasLongList = false;
  for (const seq of sampledSeqs) {
    if (sampler.needsWholeRow(seq.seqId)) return null;
    const params = sampler.paramsOf(seq.seqId);
    if (params.temperature <= 0) continue;
    const limit = candidateLimit(params.topK, vocabSize);
    k = Math.max(k, Math.min(limit, maxK));
    hasLongList ||= limit > maxK;
  }
  if (!hasLongList) return { k, invTemperatures: null };
  const invTemperatures = Float32Array.from(sampledSeqs, (seq) => {
    const { temperature } = sampler.paramsOf(seq.seqId);
    return temperature > 0 ? 1 / temperature : 0;
  });
  return { k, invTemperatures };
}

/** The step's answer from the GPU's candidates, reading back the logits of rows the head cannot decide. */
export async function sampleFromCandidates(
  step: StepBatch,
  sampler: StepSampler,
  plan: CandidatesPlan,
  vocabSize: number,
  run: CandidatesRun,
): Promise<StepResult> {
  const sampledSeqs = step.seqs.filter((seq) => seq.isSampled);
  const { k } = plan;
  const floatsPerRow = 2 * k + (plan.invTemperatures ? 1 : 0);
  let picks: (number | null)[] = [];
  const drawAll = (candidates: Float32Array): number[] => {
    if (candidates.length !== sampledSeqs.length * floatsPerRow) {
      throw new RangeError(`${candidates.length} candidate floats for ${sampledSeqs.length} rows of ${k}`);
    }
    picks = sampledSeqs.map((seq, r) => {
      const params = sampler.paramsOf(seq.seqId);
      const { values, ids } = splitTopK(candidates, r, k);
      if (params.temperature <= 0) return ids[0];
      const uniform = samplingUniform(params.seed, seq.outputIndex);
      const limit = candidateLimit(params.topK, vocabSize);
      if (limit <= k)
        return ids[sampleRow(values.slice(0, limit), params.temperature, limit, params.topP, uniform)];
      const tailWeight = candidates[sampledSeqs.length * 2 * k + r];
      const head = { values, ids, tailWeight, rowLength: vocabSize };
      return drawFromHead(head, params.temperature, params.topK, params.topP, uniform);
    });
    return picks.flatMap((pick, r) => (pick === null ? [r] : []));
  };
  const { logitsRows } = await run(plan, drawAll);
  const sampled = sampledSeqs.map((seq, r) => {
    const pick = picks[r];
    if (pick !== null) return { seqId: seq.seqId, tokenId: pick };
    const row = logitsRows.get(r);
    if (!row)
      throw new Error(`sampled row ${r}: the head could not decide its draw and its logits were not read`);
    const params = sampler.paramsOf(seq.seqId);
    const uniform = samplingUniform(params.seed, seq.outputIndex);
    return {
      seqId: seq.seqId,
      tokenId: sampleRow(row, params.temperature, params.topK, params.topP, uniform),
    };
  });
  return { stepId: step.stepId, sampled };
}

/**
 * Encodes the plan's selection over logits [numSampled][vocabSize] (a tensor on the GPU), reads
 * it back, then reads the logits of the rows rowsToRead names. Buffers go to `step` for the
 * caller to destroy.
 */
export async function selectCandidates(
  kernels: WebGpuKernels,
  logits: GpuTensor,
  numSampled: number,
  vocabSize: number,
  plan: CandidatesPlan,
  rowsToRead: (candidates: Float32Array) => number[],
  step: GpuTensor[],
): Promise<GpuCandidates> {
  const { k, invTemperatures } = plan;
  const candidates = kernels.allocate(numSampled * (2 * k + (invTemperatures ? 1 : 0)));
  step.push(candidates);
  kernels.topKRows(candidates, logits, numSampled, vocabSize, k);
  if (invTemperatures) {
    const inverse = kernels.upload(invTemperatures);
    step.push(inverse);
    kernels.tailWeights(candidates, logits, inverse, numSampled, vocabSize, k);
  }
  const read = await kernels.read(candidates);
  const rows = rowsToRead(read);
  const logitsRows = new Map<number, Float32Array>();
  if (rows.length > 0) {
    const picked = kernels.allocate(rows.length * vocabSize);
    step.push(picked);
    rows.forEach((row, i) => {
      kernels.copy(picked, i * vocabSize, logits, row * vocabSize, vocabSize);
    });
    const all = await kernels.read(picked);
    rows.forEach((row, i) => {
      logitsRows.set(row, all.slice(i * vocabSize, (i + 1) * vocabSize));
    });
  }
  return { candidates: read, logitsRows };
}

/** How many candidates sampleRow draws among for a top-k setting (<= 0: all). */
function candidateLimit(topK: number, vocabSize: number): number {
  return topK > 0 ? Math.min(topK, vocabSize) : vocabSize;
}
