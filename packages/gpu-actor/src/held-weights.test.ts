import { Xoshiro128 } from '@seesaw/model';
import { describe, expect, it } from 'vitest';
import { HeldWeights } from './held-weights.ts';
import { copyRect, type Rect, sliceRect } from './slice-geometry.ts';

// Rectangle copies and held-slice cuts, checked element by element against direct indexing of a
// whole random tensor (element (r, c) of a [R][C] tensor of `bytes`-wide elements).

function randomTensor(rng: Xoshiro128, rows: number, cols: number, elementBytes: number): Uint8Array {
  const out = new Uint8Array(rows * cols * elementBytes);
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(rng.nextFloat() * 256);
  return out;
}

/** The bytes of `rect` cut from a whole [R][C] tensor, element by element. */
function naiveCut(whole: Uint8Array, cols: number, rect: Rect, elementBytes: number): Uint8Array {
  const out: number[] = [];
  for (let r = rect.row0; r < rect.row1; r++)
    for (let c = rect.col0; c < rect.col1; c++)
      for (let b = 0; b < elementBytes; b++) out.push(whole[(r * cols + c) * elementBytes + b]!);
  return Uint8Array.from(out);
}

function randomRange(rng: Xoshiro128, extent: number): [number, number] {
  const a = Math.floor(rng.nextFloat() * extent);
  const b = a + 1 + Math.floor(rng.nextFloat() * (extent - a));
  return [a, b];
}

describe('sliceRect', () => {
  it('maps rows, columns and 1-D slices to rectangles and rejects ranges outside the tensor', () => {
    expect(sliceRect({ name: 'w', axis: 'rows', start: 2, end: 5 }, [8, 6])).toEqual({
      row0: 2,
      row1: 5,
      col0: 0,
      col1: 6,
    });
    expect(sliceRect({ name: 'w', axis: 'columns', start: 1, end: 3 }, [8, 6])).toEqual({
      row0: 0,
      row1: 8,
      col0: 1,
      col1: 3,
    });
    expect(sliceRect({ name: 'n', axis: 'rows', start: 4, end: 9 }, [16])).toEqual({
      row0: 0,
      row1: 1,
      col0: 4,
      col1: 9,
    });
    expect(() => sliceRect({ name: 'w', axis: 'columns', start: 3, end: 7 }, [8, 6])).toThrow(
      /"w": columns \[3, 7\) are outside \[0, 6\)/,
    );
  });
});

describe('copyRect', () => {
  it('copies random sub-rectangles between random holders like direct indexing does', () => {
    const rng = new Xoshiro128(7);
    for (let trial = 0; trial < 200; trial++) {
      const rows = 1 + Math.floor(rng.nextFloat() * 9);
      const cols = 1 + Math.floor(rng.nextFloat() * 9);
      const elementBytes = [1, 2, 4][trial % 3]!;
      const whole = randomTensor(rng, rows, cols, elementBytes);
      const [sr0, sr1] = randomRange(rng, rows);
      const [sc0, sc1] = randomRange(rng, cols);
      const srcRect = { row0: sr0, row1: sr1, col0: sc0, col1: sc1 };
      const [r0, r1] = randomRange(rng, sr1 - sr0);
      const [c0, c1] = randomRange(rng, sc1 - sc0);
      const region = { row0: sr0 + r0, row1: sr0 + r1, col0: sc0 + c0, col1: sc0 + c1 };
      const src = naiveCut(whole, cols, srcRect, elementBytes);
      // The destination is the whole tensor's rectangle: region lands at its tensor position.
      const dest = new Uint8Array(whole.length);
      copyRect(src, srcRect, dest, { row0: 0, row1: rows, col0: 0, col1: cols }, region, elementBytes);
      expect(naiveCut(dest, cols, region, elementBytes)).toEqual(naiveCut(whole, cols, region, elementBytes));
      // Nothing outside the region was written.
      let outside = 0;
      for (let r = 0; r < rows; r++)
        for (let c = 0; c < cols; c++) {
          const inRegion = r >= region.row0 && r < region.row1 && c >= region.col0 && c < region.col1;
          if (inRegion) continue;
          for (let b = 0; b < elementBytes; b++) outside += dest[(r * cols + c) * elementBytes + b]!;
        }
      expect(outside).toBe(0);
    }
  });

  it('refuses a region outside either side', () => {
    const rect = { row0: 0, row1: 2, col0: 0, col1: 2 };
    expect(() =>
      copyRect(new Uint8Array(4), rect, new Uint8Array(4), rect, { row0: 1, row1: 3, col0: 0, col1: 1 }, 1),
    ).toThrow(/inside source/);
  });
});

describe('HeldWeights', () => {
  const rng = new Xoshiro128(11);
  const shape = [12, 10];
  const whole = randomTensor(rng, 12, 10, 2);
  const cut = (rect: Rect) => naiveCut(whole, 10, rect, 2);

  it('cuts row and column pieces out of slices held along either axis', () => {
    const held = new HeldWeights();
    const byColumns = { name: 'o', axis: 'columns' as const, start: 3, end: 9 };
    const byRows = { name: 'down', axis: 'rows' as const, start: 0, end: 12 };
    held.hold(byColumns, 1, 'BF16', shape, cut(sliceRect(byColumns, shape)));
    held.hold(byRows, 1, 'BF16', shape, cut(sliceRect(byRows, shape)));
    const column = { name: 'o', axis: 'columns' as const, start: 4, end: 7 };
    expect(held.extract(column)).toEqual(cut(sliceRect(column, shape)));
    // A whole tensor held as rows yields its column bands (a TP layout's row-parallel slice).
    const band = { name: 'down', axis: 'columns' as const, start: 5, end: 10 };
    expect(held.extract(band)).toEqual(cut(sliceRect(band, shape)));
    // A strided copy goes into the memory the caller allocates (a re-shard's arena scratch).
    const scratch = new Uint8Array(1024).fill(0xee);
    const into = held.extract(band, (numBytes) => scratch.subarray(64, 64 + numBytes));
    expect(into.buffer).toBe(scratch.buffer);
    expect(into).toEqual(cut(sliceRect(band, shape)));
    expect(() => held.extract({ name: 'o', axis: 'columns', start: 0, end: 4 })).toThrow(
      /"o" columns \[0, 4\) is not held by this device/,
    );
    const destRect = sliceRect({ name: 'down', axis: 'columns', start: 4, end: 10 }, shape);
    const dest = new Uint8Array(12 * 6 * 2);
    expect(held.copyInto(band, dest, destRect)).toBe(12 * 5 * 2);
    expect(naiveCut(dest, 6, { row0: 0, row1: 12, col0: 1, col1: 6 }, 2)).toEqual(
      cut(sliceRect(band, shape)),
    );
  });

  it('digests slices in canonical order, whatever the order they were held in, and drops units', () => {
    const slices = [
      { name: 'b', axis: 'rows' as const, start: 0, end: 4 },
      { name: 'a', axis: 'rows' as const, start: 6, end: 12 },
      { name: 'a', axis: 'rows' as const, start: 0, end: 6 },
    ];
    const one = new HeldWeights();
    const two = new HeldWeights();
    slices.forEach((slice, i) => {
      one.hold(slice, i, 'F16', shape, cut(sliceRect(slice, shape)));
    });
    [...slices].reverse().forEach((slice, i) => {
      two.hold(slice, i, 'F16', shape, cut(sliceRect(slice, shape)));
    });
    expect(one.digest()).toMatch(/^[0-9a-f]{64}$/);
    expect(two.digest()).toBe(one.digest());
    expect(one.list().map((held) => `${held.slice.name}${held.slice.start}`)).toEqual(['a0', 'a6', 'b0']);
    // One flipped byte changes the digest.
    const flipped = cut(sliceRect(slices[0]!, shape));
    flipped[3]! ^= 1;
    const three = new HeldWeights();
    three.hold(slices[0]!, 0, 'F16', shape, flipped);
    slices.slice(1).forEach((slice, i) => {
      three.hold(slice, i + 1, 'F16', shape, cut(sliceRect(slice, shape)));
    });
    expect(three.digest()).not.toBe(one.digest());
    expect(one.numBytes).toBe((4 + 6 + 6) * 10 * 2);
    expect(one.dropUnit(1)).toBe(6 * 10 * 2);
    expect(one.size).toBe(2);
    expect(() => one.hold(slices[1]!, 1, 'F16', shape, new Uint8Array(3))).toThrow(/3 bytes held/);
  });
});
