/**
 * Accounting for the device's KV blocks: which ids are free, how many. It owns no memory;
 * the device maps ids to physical storage.
 */
export class BlockAllocator {
  readonly numBlocks: number;
  // A stack: the most recently freed block is handed out first, which keeps the working
  // set small (and makes reuse of freed blocks happen early, where tests can see it).
  private readonly freeIds: number[];
  private readonly isFree: Uint8Array;

  constructor(numBlocks: number) {
    if (!Number.isInteger(numBlocks) || numBlocks < 1) {
      throw new RangeError(`numBlocks must be a positive integer, got ${numBlocks}`);
    }
    this.numBlocks = numBlocks;
    this.freeIds = [];
    for (let id = numBlocks - 1; id >= 0; id--) this.freeIds.push(id);
    this.isFree = new Uint8Array(numBlocks).fill(1);
  }

  get numFreeBlocks(): number {
    return this.freeIds.length;
  }

  get numUsedBlocks(): number {
    return this.numBlocks - this.freeIds.length;
  }

  /** Whether `count` blocks can be taken while leaving at least `numReserved` free. */
  canAllocate(count: number, numReserved = 0): boolean {
    return this.freeIds.length - count >= numReserved;
  }

  /** Takes `count` free blocks; throws if there are not enough. */
  allocate(count: number): number[] {
    if (!Number.isInteger(count) || count < 0) throw new RangeError(`bad block count ${count}`);
    if (count > this.freeIds.length) {
      throw new Error(`cannot allocate ${count} blocks: ${this.freeIds.length} free`);
    }
    const ids = this.freeIds.splice(this.freeIds.length - count, count).reverse();
    for (const id of ids) this.isFree[id] = 0;
    return ids;
  }

  /** Returns blocks to the free list; throws on unknown or already-free ids. */
  free(blockIds: readonly number[]): void {
    // Validate all before changing anything, so a bad call leaves the accounting intact.
    const seen = new Set<number>();
    for (const id of blockIds) {
      if (!Number.isInteger(id) || id < 0 || id >= this.numBlocks) throw new RangeError(`bad block id ${id}`);
      if (this.isFree[id] || seen.has(id)) throw new Error(`block ${id} freed twice`);
      seen.add(id);
    }
    // Push in reverse so the sequence's first block is handed out again first.
    for (let i = blockIds.length - 1; i >= 0; i--) {
      const id = blockIds[i];
      this.isFree[id] = 1;
      this.freeIds.push(id);
    }
  }

  isAllocated(blockId: number): boolean {
    return blockId >= 0 && blockId < this.numBlocks && this.isFree[blockId] === 0;
  }
}
