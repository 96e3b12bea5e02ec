import type { StepBatch } from '@seesaw/protocol';

/**
 * The KV cache blocks one layout of a CPU device has written, to charge the first write into
 * each: the engine's cache is lazily mapped memory (a fresh typed array, or a view of the
 * worker's KV arena, kv-cache-arena.ts, whose pages are not touched when reserved), and this
 * VM's first write to a page runs at ~0.1 GB/s where a write to a touched page runs at 5-15
 * GB/s (`seesaw profile` measures both). A block of one layer is blockSize x KV heads x head dim
 * elements, whole pages, so a block's first write touches exactly its own pages. A freed block
 * stays touched when the engine hands it out again.
 *
 * The two layouts of a Seesaw device view the same arena with different layer strides, so the
 * few blocks a run uses sit at different offsets in each: each layout keeps its own set (the
 * overlap, a block id range at the start of each layer region, is left out). While the load
 * layout writes sequences back, the device also touches the other layout's lowest blocks, as many
 * as those sequences will be prefetched into (newBlocksAhead).
 */
export class KvFirstTouch {
  private readonly touched = new Set<number>();
  private nextAhead = 0;

  constructor(private readonly blockSize: number) {
    if (!(Number.isInteger(blockSize) && blockSize > 0))
      throw new RangeError(`a KV block holds a positive whole number of tokens, not ${blockSize}`);
  }

  /** Blocks this step's forward writes for the first time: those holding its new tokens' K/V. */
  newBlocksOfStep(batch: StepBatch): number {
    let fresh = 0;
    for (const seq of batch.seqs) {
      const n = seq.tokenIds.length;
      if (n === 0) continue;
      const first = Math.floor(seq.startPos / this.blockSize);
      const last = Math.floor((seq.startPos + n - 1) / this.blockSize);
      for (let b = first; b <= last; b++) {
        const blockId = seq.blockTable[b];
        if (blockId === undefined)
          throw new RangeError(
            `step ${batch.stepId}: sequence ${seq.seqId} writes position ${b * this.blockSize} beyond its block table (${seq.blockTable.length} blocks)`,
          );
        fresh += this.touch(blockId);
      }
    }
    return fresh;
  }

  /** Blocks of a swap-in or prefetch (the kv-store writes them) not written before. */
  newBlocksOf(blockIds: readonly number[]): number {
    let fresh = 0;
    for (const blockId of blockIds) fresh += this.touch(blockId);
    return fresh;
  }

  /**
   * The next `count` block ids, counted from 0 up across calls, touched ahead of their use: a
   * Seesaw device touches its decode layout's lowest blocks while it writes back (gpu-actor
   * kv-touch-ahead.ts). Returns those not written before.
   */
  newBlocksAhead(count: number): number {
    let fresh = 0;
    for (let i = 0; i < count; i++) fresh += this.touch(this.nextAhead++);
    return fresh;
  }

  get numTouched(): number {
    return this.touched.size;
  }

  private touch(blockId: number): number {
    if (this.touched.has(blockId)) return 0;
    this.touched.add(blockId);
    return 1;
  }
}
