import * as kernels from '@seesaw/kernels';
import type { DeviceSamplingParams, SampledToken, StepBatch, StepResult } from '@seesaw/protocol';
import { type OutputPenalties, outputPenaltiesOf } from './output-penalties.ts';
import { sampledLogprobs } from './sampled-logprobs.ts';
import { samplingUniform } from './sampling-rng.ts';

/** What a device keeps about one sequence between steps to sample it. */
export interface SequenceSampling {
  params: DeviceSamplingParams;
  /** null when the sequence has no penalty. */
  penalties: OutputPenalties | null;
}

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
  private readonly sampling = new Map<number, SequenceSampling>();

  constructor(private readonly vocabSize: number) {}

  /** Applies the step's released and added sequences; call before sample(). */
  update(step: StepBatch): void {
    for (const seqId of step.releasedSeqIds) this.sampling.delete(seqId);
    for (const added of step.addedSeqs) {
      this.sampling.set(added.seqId, { params: added.sampling, penalties: outputPenaltiesOf(added) });
    }
    for (const seq of step.seqs) this.sampling.get(seq.seqId)?.penalties?.observe(seq);
  }

  /** logits: [numSampled][vocab] for the step's sampled sequences in batch order; may be scaled in place. */
  sample(step: StepBatch, logits: Float32Array): StepResult {
    const vocab = this.vocabSize;
    const sampledSeqs = step.seqs.filter((seq) => seq.isSampled);
    // Copied before sampling, which may scale rows in place.
    const returnedLogits = step.isLogitsReturned
      ? sampledSeqs.map((_, i) => logits.slice(i * vocab, (i + 1) * vocab))
      : undefined;
    // Log probabilities are of the raw rows: kept before penalties or a draw change them.
    const rawRows = sampledSeqs.map((seq, i) =>
      this.paramsOf(seq.seqId).numLogprobs === undefined ? null : logits.slice(i * vocab, (i + 1) * vocab),
    );
    // Penalties change the row before every choice, greedy included (OpenAI's order).
    sampledSeqs.forEach((seq, i) => {
      this.stateOf(seq.seqId).penalties?.apply(logits.subarray(i * vocab, (i + 1) * vocab));
    });
    // One call for the step: greedy rows take their argmax, the others their (seed, index) draw,
    // rows spread over the kernel threads.
    const tokenIds = kernels.sampleRows(
      logits.subarray(0, sampledSeqs.length * vocab),
      vocab,
      sampledSeqs.map((seq) => {
        const { temperature, topK, topP, seed } = this.paramsOf(seq.seqId);
        if (temperature <= 0) return { temperature: 0, topK: 0, topP: 1, uniform: 0 };
        return { temperature, topK, topP, uniform: samplingUniform(seed, seq.outputIndex) };
      }),
    );
    const sampled = sampledSeqs.map((seq, i): SampledToken => {
      const params = this.paramsOf(seq.seqId);
      const tokenId = tokenIds[i];
      const rawRow = rawRows[i];
      if (rawRow === null) return { seqId: seq.seqId, tokenId };
      return { seqId: seq.seqId, tokenId, logprobs: sampledLogprobs(rawRow, tokenId, params.numLogprobs!) };
    });
    return returnedLogits
      ? { stepId: step.stepId, sampled, logits: returnedLogits }
      : { stepId: step.stepId, sampled };
  }

  /**
   * Whether this step needs its sampled rows' logits on the host: it returns them, or a sampled
   * sequence draws with a temperature or has penalties. Otherwise a device may pick the greedy
   * ids itself (fromGreedyIds) and move only those.
   */
  needsLogits(step: StepBatch): boolean {
    if (step.isLogitsReturned) return true;
    return step.seqs.some(
      (seq) => seq.isSampled && (this.paramsOf(seq.seqId).temperature > 0 || this.needsWholeRow(seq.seqId)),
    );
  }

  /**
   * Whether the sequence's choice needs its whole logits row (penalties, or log probabilities
   * over the whole vocabulary), not only the best few.
   */
  needsWholeRow(seqId: number): boolean {
    const state = this.stateOf(seqId);
    return state.penalties !== null || state.params.numLogprobs !== undefined;
  }

  /** The step's answer from greedy ids a device picked, one per sampled sequence in batch order. */
  fromGreedyIds(step: StepBatch, ids: Int32Array): StepResult {
    const sampledSeqs = step.seqs.filter((seq) => seq.isSampled);
    if (ids.length !== sampledSeqs.length) {
      throw new RangeError(`${ids.length} greedy ids for ${sampledSeqs.length} sampled sequences`);
    }
    const sampled = sampledSeqs.map((seq, i) => {
      if (this.paramsOf(seq.seqId).temperature > 0 || this.needsWholeRow(seq.seqId))
        throw new Error(
          `sequence ${seq.seqId} samples with a temperature, penalties or log probabilities: its logits are needed`,
        );
      return { seqId: seq.seqId, tokenId: ids[i] };
    });
    return { stepId: step.stepId, sampled };
  }

  /** A known sequence's settings; throws for one never added. */
  paramsOf(seqId: number): DeviceSamplingParams {
    return this.stateOf(seqId).params;
  }

  private stateOf(seqId: number): SequenceSampling {
    const state = this.sampling.get(seqId);
    if (!state) throw new Error(`sequence ${seqId} was sampled before it was added`);
    return state;
  }

  /** Every known sequence's state (a re-shard carries it to the device's next sampler). */
  snapshot(): Map<number, SequenceSampling> {
    const copy = new Map<number, SequenceSampling>();
    for (const [seqId, state] of this.sampling) {
      copy.set(seqId, { params: state.params, penalties: state.penalties?.clone() ?? null });
    }
    return copy;
  }

  /** Adds the state of `snapshot`; sequences known here already keep theirs. */
  restore(snapshot: ReadonlyMap<number, SequenceSampling>): void {
    for (const [seqId, state] of snapshot) if (!this.sampling.has(seqId)) this.sampling.set(seqId, state);
  }

  clear(): void {
    this.sampling.clear();
  }
}
