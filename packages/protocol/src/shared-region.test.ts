import { describe, expect, it } from 'vitest';
import { randomInt, seededRandom } from '../test/random.ts';
import { SharedRegion, type SharedSlice } from './shared-region.ts';

describe('SharedRegion', () => {
  it('allocates aligned, non-overlapping slices and merges freed ranges', () => {
    const random = seededRandom(11);
    const size = 64 * 1024;
    const region = SharedRegion.create(0, size);
    const live: SharedSlice[] = [];
    for (let step = 0; step < 2000; step++) {
      if (live.length && random() < 0.45) {
        region.release(live.splice(randomInt(random, live.length), 1)[0]!);
      } else {
        const slice = region.allocate(randomInt(random, 4000) + 1);
        if (slice) live.push(slice);
      }
      const sorted = [...live].sort((a, b) => a.byteOffset - b.byteOffset);
      for (let i = 0; i < sorted.length; i++) {
        expect(sorted[i]!.byteOffset % 64).toBe(0);
        expect(sorted[i]!.byteOffset + sorted[i]!.byteLength).toBeLessThanOrEqual(
          sorted[i + 1]?.byteOffset ?? size,
        );
      }
    }
    for (const slice of live.splice(0)) region.release(slice);
    // Everything merged back: one allocation of the whole region fits again.
    expect(region.numFreeBytes).toBe(size);
    expect(region.allocate(size)).toEqual({ region: 0, byteOffset: 0, byteLength: size });
    expect(region.allocate(1)).toBeUndefined();
  });

  it('makes tensors backed by the shared buffer and views them by slice', () => {
    const region = SharedRegion.create(3, 4096);
    const t = region.allocateTensor('bf16', [4, 8])!;
    expect(t.data).toBeInstanceOf(Uint16Array);
    expect(t.data.buffer).toBe(region.buffer);
    t.data.fill(0x3f80);
    const view = region.view('bf16', [4, 8], { region: 3, byteOffset: t.data.byteOffset, byteLength: 64 });
    expect(Array.from(view.data)).toEqual(new Array(32).fill(0x3f80));
    expect(() => region.view('f32', [4, 8], { region: 3, byteOffset: 0, byteLength: 64 })).toThrow(
      RangeError,
    );
    region.release(t);
    expect(() => region.release(t)).toThrow(/nothing allocated/);
  });
});
