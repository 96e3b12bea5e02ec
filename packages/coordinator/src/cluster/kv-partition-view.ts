/**
 * A slice of one replica for one "virtual engine" (pp engines per replica keep pp steps in
 * flight so pipeline stages overlap, as vLLM does). Each view owns a disjoint, contiguous range
 * of the replica's KV blocks and renumbers what its Engine sends so the engines cannot collide
 * on the shared devices:
 *   block id  -> blockOffset + id      (partition p owns [p * numKvBlocks, (p + 1) * numKvBlocks))
 *   seq id    -> id * numPartitions + p
 *   step id   -> the replica's next step id (one counter for all its views, so ids are unique)
 *   host slot id -> slotOffset + id  (with hostSlots: engine e of the host owns
 *                   [e * numSlotsPerPartition, (e + 1) * numSlotsPerPartition), where
 *                   e = firstPartition + p counts engines over every replica on the host)
 * and maps the answer back. KV swaps (swapOuts/swapIns) get the block, sequence and slot
 * renumbering, so engines sharing one host KV tier never collide on a slot.
 */
import type { StepBatch, StepKvSwap, StepResult } from '@seesaw/protocol';
import type { ExecutionDevice } from '../engine.ts';

/** How a replica's views share the host KV tier: equal slot ranges, one per engine on the host. */
export interface HostSlotPartition {
  /** Slots each engine's scheduler allots (its EngineOptions.hostKv.numSlots). */
  numSlotsPerPartition: number;
  /** Host-wide index of this replica's first view (replica index * views per replica). */
  firstPartition: number;
}

export class KvPartitionView implements ExecutionDevice {
  readonly numKvBlocks: number;
  readonly blockSize: number;
  private readonly blockOffset: number;
  private readonly slotOffset: number;
  private readonly numSlots: number | undefined;

  constructor(
    private readonly replica: ExecutionDevice,
    readonly partition: number,
    readonly numPartitions: number,
    private readonly nextStepId: () => number,
    hostSlots?: HostSlotPartition,
  ) {
    this.numKvBlocks = Math.floor(replica.numKvBlocks / numPartitions);
    if (this.numKvBlocks < 1) {
      throw new RangeError(
        `${replica.numKvBlocks} KV blocks cannot be split into ${numPartitions} partitions`,
      );
    }
    this.blockSize = replica.blockSize;
    this.blockOffset = partition * this.numKvBlocks;
    this.numSlots = hostSlots?.numSlotsPerPartition;
    this.slotOffset = hostSlots ? (hostSlots.firstPartition + partition) * hostSlots.numSlotsPerPartition : 0;
  }

  private hostSlot(id: number): number {
    if (this.numSlots !== undefined && !(Number.isInteger(id) && id >= 0 && id < this.numSlots))
      throw new RangeError(`host slot ${id} is outside this engine's ${this.numSlots} slots`);
    return this.slotOffset + id;
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
    const swap = (s: StepKvSwap): StepKvSwap => ({
      ...s,
      seqId: seqId(s.seqId),
      blockIds: s.blockIds.map((block) => block + this.blockOffset),
      slotIds: s.slotIds.map((slot) => this.hostSlot(slot)),
    });
    if (batch.swapOuts) mapped.swapOuts = batch.swapOuts.map(swap);
    if (batch.swapIns) mapped.swapIns = batch.swapIns.map(swap);
    const result = await this.replica.execute(mapped);
    const answer: StepResult = {
      stepId: batch.stepId,
      // Only the id is the replica's; the token and any log probabilities pass through.
      sampled: result.sampled.map((sampled) => ({
        ...sampled,
        seqId: (sampled.seqId - this.partition) / this.numPartitions,
      })),
    };
    if (result.logits) answer.logits = result.logits;
    return answer;
  }
}

/** `count` views over one replica, sharing its step id counter (and, with hostSlots, the host's slots). */
export function partitionReplica(
  replica: ExecutionDevice,
  count: number,
  hostSlots?: HostSlotPartition,
): KvPartitionView[] {
  let nextStepId = 0;
  const next = () => nextStepId++;
  return Array.from({ length: count }, (_, p) => new KvPartitionView(replica, p, count, next, hostSlots));
}
