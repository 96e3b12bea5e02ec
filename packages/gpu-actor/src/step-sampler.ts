import * as kernels from '@seesaw/kernels';
import { balancedRange, type IndexRange } from '@seesaw/model';
import type { DeviceSamplingParams, SampledToken, StepBatch, StepResult, StepSeq } from '@seesaw/protocol';
import { type OutputPenalties, outputPenaltiesOf } from './output-penalties.ts';
import { sampledLogprobs } from './sampled-logprobs.ts';
import { samplingUniform } from './sampling-rng.ts';
import type { TensorParallelGroup } from './tensor-parallel-group.ts';

/** Token ids up to this travel exactly through an f32 all-gather. */
const MAX_F32_EXACT_ID = 2 ** 24;

/** A step's sampled sequences and the rows its result returns. */
interface KeptRows {
  seqs: StepSeq[];
  returnedLogits: Float32Array[] | undefined;
  /** The raw row of each sequence that asks for log probabilities, else null. */
  rawRows: (Float32Array | null)[];
}

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
    const rows = this.keepRows(step, logits);
    return this.answer(step, rows, this.draw(rows.seqs, logits, 0, rows.seqs.length));
  }

  /**
   * sample() split by rows over a tensor-parallel group: every rank holds the gathered logits
   * (all rows, or at least the rows rowsReadAcrossRanks names), draws only its balanced share, and the ranks all-gather the chosen ids
   * (exact as f32 below 2^24). Each row is drawn by the same kernel from the same row as on one
   * device, so the ids are the same bits; a T2 rank no longer draws every row while the other
   * does the same (a full-vocabulary draw costs about a millisecond a row here). Every rank of
   * the group must call it for the same step.
   */
  async sampleAcrossRanks(
    step: StepBatch,
    logits: Float32Array,
    group: TensorParallelGroup,
  ): Promise<StepResult> {
    const rows = this.keepRows(step, logits);
    const share = this.drawnShare(rows.seqs.length, group);
    if (!share) return this.answer(step, rows, this.draw(rows.seqs, logits, 0, rows.seqs.length));
    const { start, end } = share;
    const mine = this.draw(rows.seqs, logits, start, end);
    const gathered = new Float32Array(rows.seqs.length);
    await group.allGather(Float32Array.from(mine), gathered);
    return this.answer(step, rows, Int32Array.from(gathered));
  }

  /**
   * The logits rows sampleAcrossRanks reads on this rank: only the rows it draws, unless the
   * result returns rows or log probabilities (then all of them: undefined).
   */
  rowsReadAcrossRanks(step: StepBatch, group: TensorParallelGroup): IndexRange | undefined {
    const seqs = step.seqs.filter((seq) => seq.isSampled);
    if (step.isLogitsReturned || seqs.some((seq) => this.paramsOf(seq.seqId).numLogprobs !== undefined))
      return undefined;
    return this.drawnShare(seqs.length, group);
  }

  /** The sampled rows this rank of `group` draws; undefined when one rank draws them all. */
  private drawnShare(numSampled: number, group: TensorParallelGroup): IndexRange | undefined {
    if (group.size === 1 || this.vocabSize > MAX_F32_EXACT_ID) return undefined;
    return balancedRange(numSampled, group.size, group.rank);
  }

  /** The step's sampled sequences, and the rows a result returns, copied before a draw changes them. */
  private keepRows(step: StepBatch, logits: Float32Array): KeptRows {
    const vocab = this.vocabSize;
    const seqs = step.seqs.filter((seq) => seq.isSampled);
    const returnedLogits = step.isLogitsReturned
      ? seqs.map((_, i) => logits.slice(i * vocab, (i + 1) * vocab))
      : undefined;
    // Log probabilities are of the raw rows: kept before penalties or a draw change them.
    const rawRows = seqs.map((seq, i) =>
      this.paramsOf(seq.seqId).numLogprobs === undefined ? null : logits.slice(i * vocab, (i + 1) * vocab),
    );
    return { seqs, returnedLogits, rawRows };
  }

  /** The ids of sampled rows [start, end): penalties on those rows, then one native call. */
  private draw(seqs: StepSeq[], logits: Float32Array, start: number, end: number): Int32Array {
    const vocab = this.vocabSize;
    // Penalties change the row before every choice, greedy included (OpenAI's order).
    for (let i = start; i < end; i++) {
      this.stateOf(seqs[i].seqId).penalties?.apply(logits.subarray(i * vocab, (i + 1) * vocab));
    }
    // Greedy rows take their argmax, the others their (seed, index) draw, rows spread over the
    // kernel threads.
    return kernels.sampleRows(
      logits.subarray(start * vocab, end * vocab),
      vocab,
      seqs.slice(start, end).map((seq) => {
        const { temperature, topK, topP, seed } = this.paramsOf(seq.seqId);
        if (temperature <= 0) return { temperature: 0, topK: 0, topP: 1, uniform: 0 };
        return { temperature, topK, topP, uniform: samplingUniform(seed, seq.outputIndex) };
      }),
    );
  }

  private answer(step: StepBatch, rows: KeptRows, tokenIds: Int32Array): StepResult {
    const sampled = rows.seqs.map((seq, i): SampledToken => {
      const params = this.paramsOf(seq.seqId);
      const tokenId = tokenIds[i];
      const rawRow = rows.rawRows[i];
      if (rawRow === null) return { seqId: seq.seqId, tokenId };
      return { seqId: seq.seqId, tokenId, logprobs: sampledLogprobs(rawRow, tokenId, params.numLogprobs!) };
    });
    return rows.returnedLogits
      ? { stepId: step.stepId, sampled, logits: rows.returnedLogits }
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
