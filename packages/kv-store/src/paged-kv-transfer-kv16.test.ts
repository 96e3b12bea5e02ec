// A 16-bit KV cache (bf16 / f16 bit patterns in Uint16Array) moves between a device's paged
// cache and the host store exactly as it is: no conversion on the way, half the bytes of f32
// per token, so the same host memory holds twice the slots.
import { Xoshiro128 } from '@seesaw/model';
import { describe, expect, it } from 'vitest';
import { hostKvLayoutFor, slotBytes } from './host-kv-layout.ts';
import { HostKvStore } from './host-kv-store.ts';
import { gatherSequenceKv, type PagedKvLayout, scatterSequenceKv } from './paged-kv-transfer.ts';

const NUM_LAYERS = 2;
const NUM_BLOCKS = 10;
const TINY = { numLayers: NUM_LAYERS, numKvHeads: 2, headDim: 8 } as Parameters<typeof hostKvLayoutFor>[0];

function random16BitCache(rng: Xoshiro128, layout: PagedKvLayout): Uint16Array[] {
  const n = NUM_BLOCKS * layout.numKvHeads * layout.blockSize * layout.headDim;
  return Array.from({ length: NUM_LAYERS }, () => {
    const array = new Uint16Array(n);
    for (let i = 0; i < n; i++) array[i] = rng.nextU32() & 0xffff;
    return array;
  });
}

describe.each(['bf16', 'f16'] as const)('paged KV transfer of a %s cache', (dtype) => {
  const layout: PagedKvLayout = { numKvHeads: 2, headDim: 8, blockSize: 4, dtype };
  const heads = { start: 0, end: 2 };

  it('swaps out to the store and back into other blocks bit for bit', () => {
    const rng = new Xoshiro128(dtype === 'bf16' ? 21 : 22);
    const keys = random16BitCache(rng, layout);
    const values = random16BitCache(rng, layout);
    const store = new HostKvStore({ layout: hostKvLayoutFor(TINY, 4, dtype), capacityBytes: 1 << 16 });
    const numTokens = 11;
    const box = {
      seqId: 1,
      layers: { start: 0, end: NUM_LAYERS },
      heads,
      tokens: { start: 0, end: numTokens },
    };
    expect(store.reserve(1, 3).ok).toBe(true);
    const slice = gatherSequenceKv(keys, values, [7, 2, 5], numTokens, layout, heads);
    expect(slice.dtype).toBe(dtype);
    expect(slice.data).toBeInstanceOf(Uint16Array);
    expect(store.put(box, slice).ok).toBe(true);
    const got = store.get(box);
    if (!got.ok) throw new Error(got.reason);
    const targetK = random16BitCache(rng, layout);
    const targetV = random16BitCache(rng, layout);
    scatterSequenceKv(targetK, targetV, [0, 9, 3], numTokens, layout, heads, got.tensor);
    const back = gatherSequenceKv(targetK, targetV, [0, 9, 3], numTokens, layout, heads);
    expect(Array.from(back.data)).toEqual(Array.from(slice.data));
  });

  it('refuses a slice or cache of another dtype, naming both', () => {
    const rng = new Xoshiro128(23);
    const keys = random16BitCache(rng, layout);
    const values = random16BitCache(rng, layout);
    const f32Slice = { dtype: 'f32' as const, shape: [NUM_LAYERS, 2, 2, 4, 8], data: new Float32Array(256) };
    expect(() => scatterSequenceKv(keys, values, [1], 4, layout, heads, f32Slice)).toThrow(
      `slice is f32 [${f32Slice.shape}], need ${dtype}`,
    );
    const f32Cache = [new Float32Array(keys[0]!.length), new Float32Array(keys[0]!.length)];
    expect(() => gatherSequenceKv(f32Cache, f32Cache, [1], 4, layout, heads)).toThrow(
      `cache layers are not ${dtype} arrays`,
    );
  });

  it('holds twice the slots of f32 in the same host memory', () => {
    const capacityBytes = 3 << 20;
    const f32 = new HostKvStore({ layout: hostKvLayoutFor(TINY, 16, 'f32'), capacityBytes });
    const half = new HostKvStore({ layout: hostKvLayoutFor(TINY, 16, dtype), capacityBytes });
    expect(slotBytes(half.layout) * 2).toBe(slotBytes(f32.layout));
    expect(half.numSlots).toBe(2 * f32.numSlots);
  });
});
