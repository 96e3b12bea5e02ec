/**
 * First touches of the KV cache arena's pages for a Seesaw device's other layout, made ahead of
 * its use and on this device's own thread.
 *
 * Why: the arena's bytes are viewed per layer (PagedKvCache), so block b of a P2 stage's cache
 * and block b of a T2 rank's cache are different bytes of the arena. After a P2 -> T2 switch the
 * first decode step's prefetches land in pages nothing ever wrote, and on this VM (free-page
 * reporting) a page's first write runs at 0.03-0.4 GB/s against 5-20 GB/s into touched memory;
 * the one kv-store thread paid those first writes for every device of the host in turn, while the
 * devices waited (0.7 s of the 512/16 run's first decode step). A static layout pays the first
 * touches of the blocks it decodes into inside its prefill steps, on each device in parallel.
 *
 * So while the prefill layout writes sequences back to the host tier, each device touches, in the
 * other layout's view, as many blocks as it wrote back (from block 0 up: the other layout's
 * allocator hands out its lowest ids first), which are the blocks the sequences will be
 * prefetched into after the switch. The pages are then paid for once, on the device's thread, in
 * the prefill phase, as a static layout pays them; the kv-store copies into touched memory.
 *
 * Touching never changes a byte, so it is safe while the kv-store thread copies into or out of
 * other blocks on the same pages, and while the current layout's cache holds live KV there. The
 * kernel maps the pages (populatePages, one madvise per range, ~1.3 us a page); where it cannot,
 * each page gets an atomic OR with 0 from here, which costs ~12-17 us a page on this VM while the
 * process's other threads run (a zero-page mapping replaced, with a TLB shootdown: see
 * populate_pages.cc), against ~3 us alone. In a 512/16 prefill phase that was ~20 ms a step on
 * each stage's critical path.
 */
import { populatePages } from '@seesaw/kernels';
import type { PagedKvCache } from './paged-kv-cache.ts';

/** Linux's base page size: one write anywhere in a page maps all of it. */
export const PAGE_BYTES = 4096;

/** A byte range [start, end) of the arena. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Where to write so that every page overlapping [start, end) is written once at least: the start,
 * every PAGE_BYTES after it, and the last byte, whatever the range's alignment.
 */
export function pageTouchOffsets(range: ByteRange): number[] {
  if (range.end <= range.start) return [];
  const offsets: number[] = [];
  for (let at = range.start; at < range.end; at += PAGE_BYTES) offsets.push(at);
  if (offsets[offsets.length - 1] !== range.end - 1) offsets.push(range.end - 1);
  return offsets;
}

/**
 * Maps every page overlapping `range` for writing, values unchanged: by the kernel, or else by an
 * atomic OR with 0 at each of pageTouchOffsets. Returns the pages the range overlaps.
 */
export function touchPages(bytes: Uint8Array, range: ByteRange): number {
  if (range.end <= range.start) return 0;
  if (!populatePages(bytes, range.start, range.end))
    for (const at of pageTouchOffsets(range)) Atomics.or(bytes, at, 0);
  return Math.floor((range.end - 1) / PAGE_BYTES) - Math.floor(range.start / PAGE_BYTES) + 1;
}

/**
 * The arena bytes of blocks [from, to) in `view`: per layer array (K and V of each layer) one
 * contiguous range, since a layer's blocks lie one after another.
 */
export function blockByteRanges(view: PagedKvCache, from: number, to: number): ByteRange[] {
  const ranges: ByteRange[] = [];
  if (to <= from) return ranges;
  for (const array of [...view.keys, ...view.values]) {
    const blockBytes = array.byteLength / view.numBlocks;
    ranges.push({ start: array.byteOffset + from * blockBytes, end: array.byteOffset + to * blockBytes });
  }
  return ranges;
}

/** Touches the other layout's blocks in order, from block 0, as many as it is told to. */
export class KvTouchAhead {
  private nextBlock = 0;
  private numWrites = 0;
  private readonly bytes: Uint8Array;

  /** `view`: the other layout's cache, viewed over the same SharedArrayBuffer as this layout's. */
  constructor(private readonly view: PagedKvCache) {
    const buffer = view.keys[0]?.buffer;
    if (!(buffer instanceof SharedArrayBuffer))
      throw new TypeError('touching ahead needs a cache viewed over a SharedArrayBuffer (a KV cache arena)');
    this.bytes = new Uint8Array(buffer);
  }

  /** Touches the next `numBlocks` blocks (fewer at the cache's end); returns how many it touched. */
  touchNext(numBlocks: number): number {
    const from = this.nextBlock;
    const to = Math.min(this.view.numBlocks, from + Math.max(0, Math.floor(numBlocks)));
    for (const range of blockByteRanges(this.view, from, to)) this.numWrites += touchPages(this.bytes, range);
    this.nextBlock = to;
    return to - from;
  }

  /** Blocks touched so far (the other layout's blocks [0, touchedBlocks)). */
  get touchedBlocks(): number {
    return this.nextBlock;
  }

  /** Pages touched so far (a page two ranges share counts twice). */
  get numPageWrites(): number {
    return this.numWrites;
  }
}
