/**
 * A device worker's weight memory, allocated once and sub-allocated: every fused matrix, norm and
 * raw slice of the shard it serves is a view into one of a few big SharedArrayBuffers ("chunks"),
 * and a re-shard frees the old shard's ranges unit by unit into the arena, where the new shard's
 * next units are placed. So after the first switch a switch writes only into pages the worker has
 * touched already. On a VM with free-page reporting (this project's CI machines) the first write
 * to a freshly mapped page runs ~30-50x slower than a copy into touched memory, and freeing a big
 * typed array returns its pages to the kernel (glibc unmaps buffers above its mmap threshold), so
 * allocating each switch's matrices afresh made a switch cost that first-touch price.
 *
 * The chunks are SharedArrayBuffers: a peer device thread of this process reads the pieces a
 * re-shard sends it straight out of them (weightSlice descriptors; the sender keeps the bytes
 * until the peer's weightSliceTaken), so a p2p piece is copied once, by its receiver.
 *
 * Hand-written rather than a library: the allocator is ~60 lines of first-fit over a sorted free
 * list with coalescing, and it must hand out views of our own ArrayBuffers (a WASM or native
 * allocator would hand out addresses in memory we cannot view as plain typed arrays here).
 * A request that no free range fits (fragmentation, or more than was reserved) falls back to
 * fresh memory, counted in `stats` so a re-shard can report it: a new chunk of the request's
 * size, which the arena keeps (so the next switch of the same plan finds a range there) while
 * its capacity stays within GROWTH_ALLOWANCE of the largest reservation, else a buffer it does
 * not keep.
 */
import { type Checkpoint, dtypeByteSize, planReshard, type ShardPosition } from '@seesaw/model';

/** Every block starts on this boundary (a cache line; also enough for any element type). */
export const WEIGHT_ARENA_ALIGNMENT = 64;

/** No single chunk is larger than this (ArrayBuffers of several GiB are slow to create and refuse on some hosts). */
const MAX_CHUNK_BYTES = 1 << 30;

/** Capacity the arena may reach by keeping fallback chunks, as a multiple of its largest reservation. */
export const GROWTH_ALLOWANCE = 1.5;

interface FreeRange {
  offset: number;
  length: number;
}

interface Chunk {
  buffer: SharedArrayBuffer;
  /** Free ranges, sorted by offset, never adjacent (coalesced). */
  free: FreeRange[];
}

export interface WeightArenaStats {
  /** Bytes of all chunks. */
  capacityBytes: number;
  /** Bytes of live blocks inside the chunks (aligned sizes). */
  usedBytes: number;
  /** Requests no free range fitted, served by fresh memory instead (a kept chunk or not). */
  fallbackAllocations: number;
  fallbackBytes: number;
}

/**
 * Arena bytes for `rawWeightBytes` of raw slices held at once (a shard, or a re-shard's peak):
 * norms and biases are also kept widened to f32 (a few per mille of a model), blocks are
 * aligned, and a switch's free ranges are not always where the next unit's matrices fit, so
 * 1/8 is added. Fragmentation beyond that falls back to fresh memory, counted.
 */
export function weightArenaBytesFor(rawWeightBytes: number): number {
  return Math.ceil(rawWeightBytes * 1.125) + (1 << 20);
}

function alignUp(numBytes: number): number {
  return Math.ceil(numBytes / WEIGHT_ARENA_ALIGNMENT) * WEIGHT_ARENA_ALIGNMENT;
}

export class WeightArena {
  private readonly chunks: Chunk[] = [];
  /** Live blocks' aligned sizes by chunk and offset, so `free` knows what a view owned. */
  private readonly live = new Map<ArrayBufferLike, Map<number, number>>();
  private used = 0;
  private reserved = 0;
  private fallbackAllocations = 0;
  private fallbackBytes = 0;

  constructor(private readonly maxChunkBytes = MAX_CHUNK_BYTES) {
    if (!(maxChunkBytes >= WEIGHT_ARENA_ALIGNMENT))
      throw new RangeError(`weight arena: chunk size ${maxChunkBytes} is below ${WEIGHT_ARENA_ALIGNMENT}`);
  }

  /**
   * Makes the arena hold at least `numBytes` in all: adds chunks for what is missing and touches
   * every page of them now (zero-filling), so no later switch pays a first touch wherever first
   * fit places its blocks. Never shrinks: the arena's memory stays resident.
   */
  reserve(numBytes: number): void {
    this.reserved = Math.max(this.reserved, alignUp(numBytes));
    const maxChunk = Math.floor(this.maxChunkBytes / WEIGHT_ARENA_ALIGNMENT) * WEIGHT_ARENA_ALIGNMENT;
    let missing = alignUp(numBytes) - this.capacityBytes;
    while (missing > 0) {
      const size = Math.min(alignUp(missing), maxChunk);
      new Uint8Array(this.addChunk(size).buffer).fill(0);
      missing -= size;
    }
  }

  /**
   * `numBytes` of memory, aligned: the first free range (chunk by chunk, by offset) that fits,
   * else fresh memory (counted: a new shared chunk, or a plain ArrayBuffer past the allowance).
   * Contents are whatever was there: callers overwrite it.
   */
  alloc(numBytes: number): Uint8Array {
    if (!Number.isInteger(numBytes) || numBytes < 0)
      throw new RangeError(`weight arena: cannot allocate ${numBytes} bytes`);
    const size = alignUp(Math.max(numBytes, 1));
    for (const chunk of this.chunks) {
      const index = chunk.free.findIndex((range) => range.length >= size);
      if (index < 0) continue;
      const range = chunk.free[index]!;
      const offset = range.offset;
      if (range.length === size) chunk.free.splice(index, 1);
      else chunk.free[index] = { offset: offset + size, length: range.length - size };
      return this.take(chunk, offset, size, numBytes);
    }
    this.fallbackAllocations += 1;
    this.fallbackBytes += numBytes;
    if (this.capacityBytes + size > this.reserved * GROWTH_ALLOWANCE) return new Uint8Array(numBytes);
    const chunk = this.addChunk(size);
    chunk.free = [];
    return this.take(chunk, 0, size, numBytes);
  }

  /**
   * Gives a block back: `block` must be a view alloc returned (starting where it did); a fallback
   * block is left to the garbage collector. Freeing a block twice throws.
   */
  free(block: ArrayBufferView): void {
    const blocks = this.live.get(block.buffer);
    if (!blocks) return; // A fallback allocation: not the arena's.
    const offset = block.byteOffset;
    const size = blocks.get(offset);
    if (size === undefined)
      throw new RangeError(`weight arena: no live block starts at offset ${offset} (freed twice?)`);
    blocks.delete(offset);
    this.used -= size;
    const chunk = this.chunks.find((candidate) => candidate.buffer === block.buffer)!;
    insertCoalesced(chunk.free, { offset, length: size });
  }

  private addChunk(size: number): Chunk {
    const chunk: Chunk = { buffer: new SharedArrayBuffer(size), free: [{ offset: 0, length: size }] };
    this.chunks.push(chunk);
    this.live.set(chunk.buffer, new Map());
    return chunk;
  }

  private take(chunk: Chunk, offset: number, size: number, numBytes: number): Uint8Array {
    this.live.get(chunk.buffer)!.set(offset, size);
    this.used += size;
    return new Uint8Array(chunk.buffer, offset, numBytes);
  }

  /** Whether `block` lies in the arena's memory (not a fallback buffer it did not keep). */
  owns(block: ArrayBufferView): boolean {
    return this.live.has(block.buffer);
  }

  get capacityBytes(): number {
    return this.chunks.reduce((sum, chunk) => sum + chunk.buffer.byteLength, 0);
  }

  /** Free ranges of every chunk, by chunk then offset (tests check the allocator with them). */
  freeRanges(): Array<{ chunk: number; offset: number; length: number }> {
    return this.chunks.flatMap((chunk, index) => chunk.free.map((range) => ({ chunk: index, ...range })));
  }

  get stats(): WeightArenaStats {
    return {
      capacityBytes: this.capacityBytes,
      usedBytes: this.used,
      fallbackAllocations: this.fallbackAllocations,
      fallbackBytes: this.fallbackBytes,
    };
  }
}

/** Inserts `range` into the sorted free list, merged with a neighbour it touches. */
function insertCoalesced(free: FreeRange[], range: FreeRange): void {
  let index = 0;
  while (index < free.length && free[index]!.offset < range.offset) index++;
  const before = free[index - 1];
  const after = free[index];
  if (before && before.offset + before.length > range.offset)
    throw new RangeError(`weight arena: range at ${range.offset} overlaps a free one`);
  if (after && range.offset + range.length > after.offset)
    throw new RangeError(`weight arena: range at ${range.offset} overlaps a free one`);
  const mergesBefore = before !== undefined && before.offset + before.length === range.offset;
  const mergesAfter = after !== undefined && range.offset + range.length === after.offset;
  if (mergesBefore && mergesAfter) {
    before.length += range.length + after.length;
    free.splice(index, 1);
  } else if (mergesBefore) {
    before.length += range.length;
  } else if (mergesAfter) {
    free[index] = { offset: range.offset, length: range.length + after.length };
  } else {
    free.splice(index, 0, { ...range });
  }
}

/**
 * The arena bytes a device at `here` needs to switch to `other` and back (the larger re-shard
 * peak of the two directions, as the executor reserves it at a switch). A Seesaw device reserves
 * them at load, so the pages are touched then and not during the run's first switch (on this VM
 * a first write to a page costs ~50x a copy). The peak is the host route's that reloads every
 * piece (the host weight cache's), the largest of the routes: the others may keep a unit in place
 * (unitsKeptInPlace) and peak lower, so one reservation serves every route.
 */
function samePosition(a: ShardPosition, b: ShardPosition): boolean {
  return a.tp === b.tp && a.tpRank === b.tpRank && a.pp === b.pp && a.ppStage === b.ppStage;
}

export function switchArenaBytes(checkpoint: Checkpoint, here: ShardPosition, other: ShardPosition): number {
  const tensorBytes = (name: string) => {
    const info = checkpoint.info(name);
    return { dtypeBytes: dtypeByteSize(info.dtype), shape: info.shape };
  };
  const layoutOf = ({ tp, pp }: ShardPosition) => ({ dp: 1, tp, pp });
  const options = {
    route: 'host' as const,
    isHeldReloaded: true,
    rates: { p2pBytesPerSecond: 1e9, hostBytesPerSecond: 1e9 },
  };
  let peak = 0;
  for (const [from, to] of [
    [here, other],
    [other, here],
  ]) {
    const plan = planReshard(checkpoint.config, tensorBytes, layoutOf(from!), layoutOf(to!), options);
    const mine = plan.devices.find(({ from: at }) => samePosition(at, from!));
    if (!mine)
      throw new Error(`no device of the T${from!.tp}P${from!.pp} re-shard plan is at this device's position`);
    peak = Math.max(peak, mine.peakWeightBytes);
  }
  return weightArenaBytesFor(peak);
}
