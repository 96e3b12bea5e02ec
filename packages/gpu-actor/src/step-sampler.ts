import * as kernels from '@seesaw/kernels';
import type { DeviceSamplingParams, StepBatch, StepResult } from '@seesaw/protocol';
import { samplingUniform } from './sampling-rng.ts';

/** Rejects a step whose token ids fall outside the vocabulary, naming the sequence. */
export function checkStepTokenIds(step: StepBatch, vocabSize: number): void {
  for (const seq of step.seqs) {
    for (const id of seq.tokenIds) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new RangeError(
          `sequence ${seq.seqId}: token id ${id} outside the vocabulary [0, ${vocabSize})`,
        );
      }
    }
  }
}

/**
 * The device-side sampler: per-sequence sampling settings (kept between steps, as step
 * messages are diffs) and the choice of each sampled sequence's next token from its logits.
 */
export class StepSampler {
  private readonly sampling = new Map<number, DeviceSamplingParams>();

  constructor(private readonly vocabSize: number) {}

  /** Applies the step's released and added sequences; call before sample(). */
  update(step: StepBatch): void {
    for (const seqId of step.releasedSeqIds) this.sampling.delete(seqId);
    for (const added of step.addedSeqs) this.sampling.set(added.seqId, added.sampling);
  }

  /** logits: [numSampled][vocab] for the step's sampled sequences in batch order; may be scaled in place. */
  sample(step: StepBatch, logits: Float32Array): StepResult {
    const vocab = this.vocabSize;
    const sampledSeqs = step.seqs.filter((seq) => seq.isSampled);
    // Copied before sampling, which may scale rows in place.
    const returnedLogits = step.isLogitsReturned
      ? sampledSeqs.map((_, i) => logits.slice(i * vocab, (i + 1) * vocab))
      : undefined;
    const greedy = kernels.argmaxRows(logits, sampledSeqs.length, vocab);
    const sampled = sampledSeqs.map((seq, i) => {
      const params = this.sampling.get(seq.seqId);
      if (!params) throw new Error(`sequence ${seq.seqId} was sampled before it was added`);
      if (params.temperature <= 0) return { seqId: seq.seqId, tokenId: greedy[i] };
      const row = logits.subarray(i * vocab, (i + 1) * vocab);
      const uniform = samplingUniform(params.seed, seq.outputIndex);
      const tokenId = kernels.sampleRow(row, params.temperature, params.topK, params.topP, uniform);
      return { seqId: seq.seqId, tokenId };
    });
    return returnedLogits
      ? { stepId: step.stepId, sampled, logits: returnedLogits }
      : { stepId: step.stepId, sampled };
  }

  /** Every known sequence's settings (a re-shard carries them to the device's next sampler). */
  snapshot(): Map<number, DeviceSamplingParams> {
    return new Map(this.sampling);
  }

  /** Adds the settings of `snapshot`; sequences known here already keep theirs. */
  restore(snapshot: ReadonlyMap<number, DeviceSamplingParams>): void {
    for (const [seqId, params] of snapshot) if (!this.sampling.has(seqId)) this.sampling.set(seqId, params);
  }

  clear(): void {
    this.sampling.clear();
  }
}
