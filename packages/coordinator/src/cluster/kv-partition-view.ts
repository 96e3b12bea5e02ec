/**
 * A slice of one replica for one "virtual engine" (pp engines per replica keep pp steps in
 * flight so pipeline stages overlap, as vLLM does). Each view owns a disjoint, contiguous range
 * of the replica's KV blocks and renumbers what its Engine sends so the engines cannot collide
 * on the shared devices:
 *   block id  -> blockOffset + id      (partition p owns [p * numKvBlocks, (p + 1) * numKvBlocks))
 *   seq id    -> id * numPartitions + p
 *   step id   -> the replica's next step id (one counter for all its views, so ids are unique)
 * and maps the answer back. KV swaps (swapOuts/swapIns) get the same block and sequence
 * renumbering; their host slot ids pass through unchanged, so engines sharing one host KV tier
 * must be given disjoint slot ranges by whoever configures that tier.
 */
import type { StepBatch, StepKvSwap, StepResult } from '@seesaw/protocol';
import type { ExecutionDevice } from '../engine.ts';

export class KvPartitionView implements ExecutionDevice {
  readonly numKvBlocks: number;
  readonly blockSize: number;
  private readonly blockOffset: number;

  constructor(
    private readonly replica: ExecutionDevice,
    readonly partition: number,
    readonly numPartitions: number,
    private readonly nextStepId: () => number,
  ) {
    this.numKvBlocks = Math.floor(replica.numKvBlocks / numPartitions);
    if (this.numKvBlocks < 1) {
      throw new RangeError(
        `${replica.numKvBlocks} KV blocks cannot be split into ${numPartitions} partitions`,
      );
    }
    this.blockSize = replica.blockSize;
    this.blockOffset = partition * this.numKvBlocks;
  }

  async execute(batch: StepBatch): Promise<StepResult> {
    const stepId = this.nextStepId();
    const seqId = (id: number) => id * this.numPartitions + this.partition;
    const mapped: StepBatch = {
      stepId,
      addedSeqs: batch.addedSeqs.map((added) => ({ ...added, seqId: seqId(added.seqId) })),
      releasedSeqIds: batch.releasedSeqIds.map(seqId),
      seqs: batch.seqs.map((seq) => ({
        ...seq,
        seqId: seqId(seq.seqId),
        blockTable: seq.blockTable.map((block) => block + this.blockOffset),
      })),
    };
    if (batch.isLogitsReturned !== undefined) mapped.isLogitsReturned = batch.isLogitsReturned;
    // Host slot ids pass through unchanged: the host tier is not partitioned here (see class comment).
    const swap = (s: StepKvSwap): StepKvSwap => ({
      ...s,
      seqId: seqId(s.seqId),
      blockIds: s.blockIds.map((block) => block + this.blockOffset),
    });
    if (batch.swapOuts) mapped.swapOuts = batch.swapOuts.map(swap);
    if (batch.swapIns) mapped.swapIns = batch.swapIns.map(swap);
    const result = await this.replica.execute(mapped);
    const answer: StepResult = {
      stepId: batch.stepId,
      sampled: result.sampled.map(({ seqId: id, tokenId }) => ({
        seqId: (id - this.partition) / this.numPartitions,
        tokenId,
      })),
    };
    if (result.logits) answer.logits = result.logits;
    return answer;
  }
}

/** `count` views over one replica, sharing its step id counter. */
export function partitionReplica(replica: ExecutionDevice, count: number): KvPartitionView[] {
  let nextStepId = 0;
  const next = () => nextStepId++;
  return Array.from({ length: count }, (_, p) => new KvPartitionView(replica, p, count, next));
}
