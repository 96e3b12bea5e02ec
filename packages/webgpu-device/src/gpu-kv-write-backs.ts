/**
 * One step's KV write-backs from a GPU cache, layer group by layer group, overlapped with the
 * step's compute (the GPU twin of gpu-actor's StepKvWriteBacks, with the same contract and
 * timings).
 *
 * The forward pass encodes the step's layers into the command stream in order and calls
 * onLayerKvWritten(l) after encoding layer l. Each call encodes copies of layer l's blocks of
 * every written-back sequence into the current group's mapped-read staging buffer, right
 * behind the compute that wrote them. At the last layer of a group the stream so far is
 * submitted and the staging buffer mapped: the map resolves when the device has done that
 * group, while the next group's layers run, and then each layer of each sequence is put to the
 * kv-store. So a step is at most `maxSubmits` submissions more than before (not one per layer:
 * every submission costs a software adapter like lavapipe a queue round trip), and its
 * write-backs end soon after its compute instead of starting after it.
 *
 * Ordering: a group's copies are in the stream after the writes of its layers and before any
 * later step's compute, so a block the scheduler reuses after this step's answer is copied
 * before it is overwritten; finish() waits for every map and acknowledgement before the answer.
 */
import { checkKvSwap, type LayerKvPut, type StepWriteBacks, type WriteBackTimings } from '@seesaw/gpu-actor';
import { gatherSequenceKv } from '@seesaw/kv-store';
import { balancedRange } from '@seesaw/model';
import type { Range, StepKvSwap } from '@seesaw/protocol';
import type { GpuKvCache } from './gpu-kv-cache.ts';
import type { WebGpuKernels } from './webgpu-kernels.ts';
import type { GpuTensor } from './webgpu-stream.ts';

/** Submissions a step's write-backs add at most (the layers are split into this many groups). */
export const WRITE_BACK_SUBMITS_PER_STEP = 4;
/**
 * The same on a software adapter, where each submission is a queue round trip on the CPU cores
 * that also compute: 4 groups measured 1.08-1.25x the step time of 1 group's 0.90-0.94x (tiny,
 * lavapipe, shared machine, bench:webgpu-write-backs), so fewer, still overlapped.
 */
export const SOFTWARE_ADAPTER_WRITE_BACK_SUBMITS = 2;

/** Contiguous layer groups, one submission each: min(numLayers, maxSubmits) of them, sizes within one. */
export function writeBackLayerGroups(numLayers: number, maxSubmits: number): Range[] {
  if (!Number.isInteger(maxSubmits) || maxSubmits < 1)
    throw new RangeError(`write-back submissions per step must be a positive integer, got ${maxSubmits}`);
  const count = Math.min(numLayers, maxSubmits);
  return Array.from({ length: count }, (_, g) => balancedRange(numLayers, count, g));
}

/**
 * Where a group's staging buffer holds what: [layer of the group][K, V][block][block floats],
 * the blocks of every sequence one after another (sequence i's from firstBlock[i]).
 */
export class WriteBackStagingLayout {
  readonly firstBlock: number[];
  readonly blocksPerKv: number;

  constructor(
    swaps: readonly StepKvSwap[],
    readonly blockFloats: number,
  ) {
    let next = 0;
    this.firstBlock = swaps.map((swap) => {
      const first = next;
      next += swap.blockIds.length;
      return first;
    });
    this.blocksPerKv = next;
  }

  /** Floats of a staging buffer for `numLayers` layers. */
  floats(numLayers: number): number {
    return numLayers * 2 * this.blocksPerKv * this.blockFloats;
  }

  /** Float offset of block `block` (index in the sequence) of sequence `seq`'s K (kv 0) or V (1) at the group's layer `layer`. */
  offset(layer: number, kv: 0 | 1, seq: number, block: number): number {
    return ((layer * 2 + kv) * this.blocksPerKv + this.firstBlock[seq]! + block) * this.blockFloats;
  }
}

export class GpuKvWriteBacks implements StepWriteBacks {
  private readonly groups: Range[];
  private readonly staging: WriteBackStagingLayout;
  /** First layer whose copies are not encoded yet. */
  private nextLayer = 0;
  /** The staging buffer of the group being encoded. */
  private groupStaging: GpuTensor | null = null;
  /** Per submitted group: settles once its layers are acknowledged; rejects with its first failure. */
  private readonly groupsDone: Promise<void>[] = [];
  private firstSubmitMs: number | undefined;
  private lastAckMs: number | undefined;

  /** Checks every write-back up front, so the per-layer hook cannot fail halfway through a forward pass. */
  constructor(
    private readonly kernels: WebGpuKernels,
    private readonly cache: GpuKvCache,
    private readonly swaps: readonly StepKvSwap[],
    private readonly put: LayerKvPut,
    maxSubmits = WRITE_BACK_SUBMITS_PER_STEP,
    private readonly now: () => number = () => performance.now(),
  ) {
    for (const swap of swaps) checkKvSwap(swap, cache, 'write-back');
    this.groups = writeBackLayerGroups(cache.keys.length, maxSubmits);
    const { numKvHeads, blockSize, headDim } = cache.layout;
    this.staging = new WriteBackStagingLayout(swaps, numKvHeads * blockSize * headDim);
  }

  /**
   * The forward pass's hook, called in layer order once layer `layer` (local index) is encoded:
   * encodes the copies of every layer up to it, submitting each group it completes.
   */
  readonly onLayerKvWritten = (layer: number): void => {
    if (this.swaps.length === 0) return;
    while (this.nextLayer <= layer && this.nextLayer < this.cache.keys.length)
      this.encodeLayer(this.nextLayer++);
  };

  /**
   * Encodes the layers the forward pass did not report (a step without tokens runs none), then
   * waits for every group's acknowledgements; rejects with the first failure.
   */
  async finish(): Promise<WriteBackTimings> {
    this.onLayerKvWritten(this.cache.keys.length - 1);
    const waitStart = this.now();
    const outcomes = await Promise.allSettled(this.groupsDone);
    const writeBackWaitMs = this.now() - waitStart;
    const failure = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failure) throw failure.reason;
    const writeBackMs =
      this.firstSubmitMs === undefined
        ? 0
        : Math.max(0, (this.lastAckMs ?? this.firstSubmitMs) - this.firstSubmitMs);
    return { writeBackMs, writeBackWaitMs };
  }

  private encodeLayer(layer: number): void {
    const group = this.groups.find((g) => layer >= g.start && layer < g.end)!;
    this.groupStaging ??= this.kernels.allocateReadStaging(this.staging.floats(group.end - group.start));
    const staging = this.groupStaging;
    const b = this.staging.blockFloats;
    const tensors = [this.cache.keys[layer]!, this.cache.values[layer]!];
    this.swaps.forEach((swap, seq) => {
      for (const kv of [0, 1] as const) {
        swap.blockIds.forEach((blockId, block) => {
          const at = this.staging.offset(layer - group.start, kv, seq, block);
          this.kernels.copy(staging, at, tensors[kv]!, blockId * b, b);
        });
      }
    });
    if (layer + 1 === group.end) this.submitGroup(group, staging);
  }

  /** Submits the stream so far; once the device has done it, puts each layer of each sequence. */
  private submitGroup(group: Range, staging: GpuTensor): void {
    this.groupStaging = null;
    this.firstSubmitMs ??= this.now();
    const done = this.kernels.readStaging(staging).then((host) => this.putGroup(group, host));
    done.catch(() => {}); // awaited by finish(); a failed step may never call it
    this.groupsDone.push(done);
  }

  private async putGroup(group: Range, host: Float32Array): Promise<void> {
    const acks: Promise<void>[] = [];
    for (let layer = group.start; layer < group.end; layer++) {
      this.swaps.forEach((swap, seq) => {
        const tensor = gatherSequenceKv(
          [this.stagedBlocks(host, layer - group.start, 0, seq)],
          [this.stagedBlocks(host, layer - group.start, 1, seq)],
          Int32Array.from(swap.blockIds, (_, i) => i),
          swap.numTokens,
          this.cache.layout,
          { start: 0, end: this.cache.layout.numKvHeads },
        );
        acks.push(
          this.put(swap, layer, tensor).then(() => {
            const at = this.now();
            this.lastAckMs = Math.max(this.lastAckMs ?? at, at);
          }),
        );
      });
    }
    const outcomes = await Promise.allSettled(acks);
    const failure = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failure) throw failure.reason;
  }

  /** Sequence `seq`'s blocks of one K or V layer in a group's staging, as a cache of just those blocks. */
  private stagedBlocks(host: Float32Array, groupLayer: number, kv: 0 | 1, seq: number): Float32Array {
    const start = this.staging.offset(groupLayer, kv, seq, 0);
    return host.subarray(start, start + this.swaps[seq]!.blockIds.length * this.staging.blockFloats);
  }
}
