import { describe, expect, it } from 'vitest';
import { GROWTH_ALLOWANCE, WEIGHT_ARENA_ALIGNMENT, WeightArena } from './weight-arena.ts';

const A = WEIGHT_ARENA_ALIGNMENT;

/** Deterministic PRNG (mulberry32), so a failing sequence can be replayed from its seed. */
function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The reference: each chunk as an array of 64-byte slots, taken or not. First fit = the lowest
 * run of free slots long enough, chunk by chunk; free ranges = maximal runs of free slots.
 */
class SlotModel {
  readonly chunks: boolean[][];
  constructor(
    chunkBytes: number[],
    private readonly limitBytes: number,
  ) {
    this.chunks = chunkBytes.map((bytes) => new Array<boolean>(bytes / A).fill(false));
  }
  /** A request nothing fits: a new chunk of its size when the limit allows (its index), else -1. */
  grow(numBytes: number): number {
    const slots = Math.max(1, Math.ceil(numBytes / A));
    const capacity = this.chunks.reduce((sum, chunk) => sum + chunk.length * A, 0);
    if (capacity + slots * A > this.limitBytes) return -1;
    this.chunks.push(new Array<boolean>(slots).fill(false));
    return this.chunks.length - 1;
  }
  firstFit(numBytes: number): { chunk: number; offset: number } | undefined {
    const slots = Math.max(1, Math.ceil(numBytes / A));
    for (let c = 0; c < this.chunks.length; c++) {
      const taken = this.chunks[c]!;
      let run = 0;
      for (let s = 0; s < taken.length; s++) {
        run = taken[s] ? 0 : run + 1;
        if (run === slots) return { chunk: c, offset: (s - slots + 1) * A };
      }
    }
    return undefined;
  }
  mark(chunk: number, offset: number, numBytes: number, value: boolean): void {
    const slots = Math.max(1, Math.ceil(numBytes / A));
    for (let s = offset / A; s < offset / A + slots; s++) {
      expect(this.chunks[chunk]![s], `slot ${s} of chunk ${chunk}`).toBe(!value);
      this.chunks[chunk]![s] = value;
    }
  }
  freeRanges(): Array<{ chunk: number; offset: number; length: number }> {
    const ranges: Array<{ chunk: number; offset: number; length: number }> = [];
    this.chunks.forEach((taken, chunk) => {
      let start = -1;
      for (let s = 0; s <= taken.length; s++) {
        const isFree = s < taken.length && !taken[s];
        if (isFree && start < 0) start = s;
        if (!isFree && start >= 0) {
          ranges.push({ chunk, offset: start * A, length: (s - start) * A });
          start = -1;
        }
      }
    });
    return ranges;
  }
}

describe('WeightArena', () => {
  it('hands out aligned views, reuses freed ranges and coalesces neighbours', () => {
    const arena = new WeightArena();
    arena.reserve(1000);
    expect(arena.capacityBytes).toBe(1024);
    const a = arena.alloc(100);
    const b = arena.alloc(64);
    const c = arena.alloc(200);
    expect([a.byteOffset, b.byteOffset, c.byteOffset]).toEqual([0, 128, 192]);
    expect(a.byteLength).toBe(100);
    expect(a.buffer).toBe(b.buffer);
    arena.free(a);
    arena.free(b);
    // a and b coalesced into [0, 192): a 150-byte block fits there, first.
    expect(arena.freeRanges()).toEqual([
      { chunk: 0, offset: 0, length: 192 },
      { chunk: 0, offset: 448, length: 576 },
    ]);
    expect(arena.alloc(150).byteOffset).toBe(0);
    arena.free(c);
    expect(arena.stats).toMatchObject({ usedBytes: 192, fallbackAllocations: 0 });
    expect(() => arena.free(c)).toThrow(/freed twice/);
  });

  it('falls back to fresh memory when nothing fits, keeps it within its growth allowance, and counts it', () => {
    const arena = new WeightArena();
    arena.reserve(256);
    const inside = arena.alloc(200);
    const kept = arena.alloc(100); // 256 + 128 is within 1.5 x 256: a chunk the arena keeps
    const outside = arena.alloc(100); // 384 + 128 is not: a buffer left to the garbage collector
    expect(GROWTH_ALLOWANCE).toBe(1.5);
    expect([arena.owns(inside), arena.owns(kept), arena.owns(outside)]).toEqual([true, true, false]);
    expect(arena.stats).toMatchObject({
      capacityBytes: 384,
      fallbackAllocations: 2,
      fallbackBytes: 200,
      usedBytes: 384,
    });
    arena.free(outside);
    expect(arena.stats.usedBytes).toBe(384);
    arena.free(kept);
    // The kept chunk serves the next request of its size without a fallback.
    expect(arena.owns(arena.alloc(128))).toBe(true);
    expect(arena.stats.fallbackAllocations).toBe(2);
  });

  it('grows by chunks no larger than its chunk limit, never shrinks', () => {
    const arena = new WeightArena(1024);
    arena.reserve(2500);
    expect(arena.capacityBytes).toBe(2560);
    expect(arena.freeRanges().map((range) => range.length)).toEqual([1024, 1024, 512]);
    arena.reserve(100);
    expect(arena.capacityBytes).toBe(2560);
    expect(() => arena.alloc(-1)).toThrow(/cannot allocate -1 bytes/);
  });

  it('matches a slot model of first fit over random alloc/free sequences', () => {
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const random = rng(seed);
      const arena = new WeightArena(4096);
      arena.reserve(4096 * 2 + 1024);
      const model = new SlotModel([4096, 4096, 1024], (4096 * 2 + 1024) * GROWTH_ALLOWANCE);
      const buffers = [...new Set(arena.freeRanges().map((range) => range.chunk))];
      expect(buffers).toEqual([0, 1, 2]);
      const live: Array<{ block: Uint8Array; chunk: number; fill: number }> = [];
      const chunkOf = new Map<ArrayBufferLike, number>();
      let fallbacks = 0;
      for (let step = 0; step < 600; step++) {
        if (live.length > 0 && random() < 0.45) {
          const [entry] = live.splice(Math.floor(random() * live.length), 1);
          // Nothing else wrote into this block while it was live.
          expect(
            entry!.block.every((byte) => byte === entry!.fill),
            `seed ${seed} step ${step}`,
          ).toBe(true);
          arena.free(entry!.block);
          if (entry!.chunk >= 0)
            model.mark(entry!.chunk, entry!.block.byteOffset, entry!.block.byteLength, false);
        } else {
          const numBytes = Math.floor(random() * 900);
          const expected = model.firstFit(numBytes);
          const block = arena.alloc(numBytes);
          const fill = step % 251;
          block.fill(fill);
          if (!expected) {
            fallbacks += 1;
            const chunk = model.grow(numBytes);
            expect(arena.owns(block), `seed ${seed} step ${step}: fallback kept`).toBe(chunk >= 0);
            if (chunk >= 0) {
              expect(block.byteOffset).toBe(0);
              chunkOf.set(block.buffer, chunk);
              model.mark(chunk, 0, numBytes, true);
            }
            live.push({ block, chunk, fill });
            expect(arena.freeRanges(), `seed ${seed} step ${step}`).toEqual(model.freeRanges());
            continue;
          }
          if (!chunkOf.has(block.buffer)) chunkOf.set(block.buffer, expected.chunk);
          expect(
            { chunk: chunkOf.get(block.buffer), offset: block.byteOffset },
            `seed ${seed} step ${step}`,
          ).toEqual(expected);
          model.mark(expected.chunk, block.byteOffset, numBytes, true);
          live.push({ block, chunk: expected.chunk, fill });
        }
        expect(arena.freeRanges(), `seed ${seed} step ${step}`).toEqual(model.freeRanges());
      }
      expect(arena.stats.fallbackAllocations).toBe(fallbacks);
      console.log(`seed ${seed}: ${fallbacks} fallbacks of 600 steps`);
    }
  });
});
