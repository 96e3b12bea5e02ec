/**
 * OpenAI's presence and frequency penalties on one sequence's logits row. The counts are of the
 * tokens the sequence generated so far, learnt from the step messages themselves: the outputs
 * known when the device (re)learns the sequence, then each token it is fed at a position past
 * them (a sampled token is fed at the next step). Counting by position makes a recompute, a
 * swap-in or a repeated step count nothing twice.
 */
import type { AddedSeq, StepSeq } from '@seesaw/protocol';

export class OutputPenalties {
  private readonly counts = new Map<number, number>();
  /** Fed tokens at positions >= this are outputs not yet counted. */
  private nextPosition: number;

  constructor(
    readonly presence: number,
    readonly frequency: number,
    history: NonNullable<AddedSeq['outputHistory']>,
  ) {
    for (const id of history.tokenIds) this.countToken(id);
    this.nextPosition = history.nextPosition;
  }

  /** Counts the outputs among the step's tokens for this sequence. */
  observe(seq: StepSeq): void {
    const end = seq.startPos + seq.tokenIds.length;
    for (let pos = Math.max(this.nextPosition, seq.startPos); pos < end; pos++) {
      this.countToken(seq.tokenIds[pos - seq.startPos]);
    }
    this.nextPosition = Math.max(this.nextPosition, end);
  }

  /** logit[t] -= count[t] * frequency + presence, for every generated t (row changed in place). */
  apply(row: Float32Array): void {
    for (const [tokenId, count] of this.counts) {
      row[tokenId] -= count * this.frequency + this.presence;
    }
  }

  /** A copy for another device's sampler (a re-shard). */
  clone(): OutputPenalties {
    const copy = new OutputPenalties(this.presence, this.frequency, { tokenIds: [], nextPosition: 0 });
    for (const [tokenId, count] of this.counts) copy.counts.set(tokenId, count);
    copy.nextPosition = this.nextPosition;
    return copy;
  }

  private countToken(tokenId: number): void {
    this.counts.set(tokenId, (this.counts.get(tokenId) ?? 0) + 1);
  }
}

/** The penalties of an added sequence, or null when it has none (its rows are left untouched). */
export function outputPenaltiesOf(added: AddedSeq): OutputPenalties | null {
  const presence = added.sampling.presencePenalty ?? 0;
  const frequency = added.sampling.frequencyPenalty ?? 0;
  if (presence === 0 && frequency === 0) return null;
  if (!added.outputHistory) {
    throw new Error(`sequence ${added.seqId} has penalties but its step message carries no outputHistory`);
  }
  return new OutputPenalties(presence, frequency, added.outputHistory);
}
