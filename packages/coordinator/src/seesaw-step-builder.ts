import type { StepBatch, StepKvSwap, StepSeq } from '@seesaw/protocol';
import { numBlocksFor, type Sequence } from './sequence.ts';
import type { ScheduledChunk, StepPlan } from './step-plan.ts';

/** Collects one step of the seesaw policy: its rows, KV transfers and protocol diffs. */
export class StepBuilder {
  readonly seqs: StepSeq[] = [];
  readonly chunks: ScheduledChunk[] = [];
  readonly addedSeqs: StepBatch['addedSeqs'] = [];
  readonly preemptedSeqIds: number[] = [];
  readonly swapOuts: StepKvSwap[] = [];
  readonly swapIns: StepKvSwap[] = [];
  readonly prefetches: StepKvSwap[] = [];
  readonly kvWriteBacks: StepKvSwap[] = [];
  numTokens = 0;

  constructor(readonly blockSize: number) {}

  get isEmpty(): boolean {
    return this.seqs.length === 0;
  }

  /** Tells the device about a sequence (re)admitted to its cache. */
  add(seq: Sequence): void {
    this.addedSeqs.push(seq.addedSeq());
  }

  /** Computes the sequence's next `numNewTokens` positions; its blocks must already cover them. */
  take(seq: Sequence, numNewTokens: number): void {
    const startPos = seq.numComputedTokens;
    const end = startPos + numNewTokens;
    const isSampled = end === seq.numTokens;
    const numBlocks = numBlocksFor(end, this.blockSize);
    if (seq.blockIds.length < numBlocks)
      throw new Error(`seq ${seq.seqId} lacks blocks for ${end} positions`);
    this.seqs.push({
      seqId: seq.seqId,
      tokenIds: seq.tokenSlice(startPos, end),
      startPos,
      blockTable: seq.blockIds.slice(0, numBlocks),
      isSampled,
      outputIndex: seq.outputTokenIds.length,
    });
    this.chunks.push({ seqId: seq.seqId, startPos, numNewTokens, isSampled });
    this.numTokens += numNewTokens;
  }

  /** Positions [0, numTokens) of the sequence: its first blocks and (in order) its host slots. */
  kvSwap(seq: Sequence, numTokens: number): StepKvSwap {
    const numBlocks = numBlocksFor(numTokens, this.blockSize);
    if (seq.hostSlotIds.length !== numBlocks)
      throw new Error(`seq ${seq.seqId}: ${seq.hostSlotIds.length} host slots for ${numTokens} tokens`);
    return {
      seqId: seq.seqId,
      blockIds: seq.blockIds.slice(0, numBlocks),
      slotIds: [...seq.hostSlotIds],
      numTokens,
    };
  }

  build(stepId: number, releasedSeqIds: number[]): StepPlan {
    const batch: StepBatch = {
      stepId,
      addedSeqs: this.addedSeqs,
      releasedSeqIds: [...releasedSeqIds, ...this.preemptedSeqIds],
      seqs: this.seqs,
    };
    if (this.swapOuts.length > 0) batch.swapOuts = this.swapOuts;
    if (this.swapIns.length > 0) batch.swapIns = this.swapIns;
    if (this.prefetches.length > 0) batch.prefetches = this.prefetches;
    if (this.kvWriteBacks.length > 0) batch.kvWriteBacks = this.kvWriteBacks;
    return { batch, chunks: this.chunks, preemptedSeqIds: this.preemptedSeqIds };
  }
}
