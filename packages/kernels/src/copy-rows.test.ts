import { describe, expect, it } from 'vitest';
import { makeRng, testSeed } from '../test/test-support.ts';
import { copyRows } from './index.ts';

const rng = makeRng(testSeed());
const int = (n: number) => Math.floor(rng() * n);

/** The copy done one byte at a time: what copyRows must match. */
function referenceCopy(
  src: Uint8Array,
  srcStart: number,
  srcRowBytes: number,
  dest: Uint8Array,
  destStart: number,
  destRowBytes: number,
  runBytes: number,
  numRows: number,
): void {
  for (let r = 0; r < numRows; r++)
    for (let b = 0; b < runBytes; b++)
      dest[destStart + r * destRowBytes + b] = src[srcStart + r * srcRowBytes + b]!;
}

describe('copyRows', () => {
  it('matches a byte-by-byte copy on random strided shapes, views at an offset and shared memory included', () => {
    for (let trial = 0; trial < 200; trial++) {
      const runBytes = 1 + int(300);
      const srcRowBytes = runBytes + int(64);
      const destRowBytes = runBytes + int(64);
      const numRows = int(20);
      const srcStart = int(50);
      const destStart = int(50);
      const srcBytes = srcStart + numRows * srcRowBytes + int(10);
      const destBytes = destStart + numRows * destRowBytes + int(10);
      const srcOffset = int(16);
      const srcBuffer =
        trial % 2 ? new SharedArrayBuffer(srcOffset + srcBytes) : new ArrayBuffer(srcOffset + srcBytes);
      const src = new Uint8Array(srcBuffer, srcOffset, srcBytes);
      for (let i = 0; i < src.length; i++) src[i] = int(256);
      const dest = new Uint8Array(destBytes);
      for (let i = 0; i < dest.length; i++) dest[i] = int(256);
      const expected = dest.slice();
      referenceCopy(src, srcStart, srcRowBytes, expected, destStart, destRowBytes, runBytes, numRows);
      copyRows(src, srcStart, srcRowBytes, dest, destStart, destRowBytes, runBytes, numRows);
      expect(dest).toEqual(expected);
    }
  });

  it('matches it on copies big enough for streaming stores: one run or many, any alignment, overlapping views of one buffer', () => {
    // >= 256 KiB in runs of >= 256 bytes take the streaming path (copy_rows.cc); overlapping
    // views take memmove. Odd offsets put every run's head and tail off the 32-byte boundary.
    const shapes = [
      { runBytes: (300 << 10) + 1 + int(4096), srcRowBytes: 0, destRowBytes: 0, numRows: 1 },
      { runBytes: 768 + int(64), srcRowBytes: 1536 + 5, destRowBytes: 832 + int(64), numRows: 400 },
      { runBytes: 256, srcRowBytes: 512, destRowBytes: 256 + int(3), numRows: 1100 },
    ];
    for (const shape of shapes) {
      const { runBytes, numRows } = shape;
      const srcRowBytes = shape.srcRowBytes || runBytes;
      const destRowBytes = shape.destRowBytes || runBytes;
      const srcStart = int(97);
      const destStart = int(97);
      const src = new Uint8Array(new SharedArrayBuffer(srcStart + numRows * srcRowBytes + 64), 1 + int(31));
      for (let i = 0; i < src.length; i++) src[i] = int(256);
      const dest = new Uint8Array(destStart + numRows * destRowBytes + 64);
      for (let i = 0; i < dest.length; i++) dest[i] = int(256);
      const expected = dest.slice();
      referenceCopy(src, srcStart, srcRowBytes, expected, destStart, destRowBytes, runBytes, numRows);
      copyRows(src, srcStart, srcRowBytes, dest, destStart, destRowBytes, runBytes, numRows);
      expect(dest).toEqual(expected);
    }
    // One buffer, destination a little past the source: a forward copy would read bytes it wrote.
    const numBytes = 400 << 10;
    const buffer = new Uint8Array(numBytes + 4096);
    for (let i = 0; i < buffer.length; i++) buffer[i] = int(256);
    const expected = buffer.slice();
    expected.copyWithin(1000, 3, 3 + numBytes);
    copyRows(buffer, 3, numBytes, buffer, 1000, numBytes, numBytes, 1);
    expect(buffer).toEqual(expected);
  });

  it('refuses rows past either array, runs longer than a stride and non-byte arrays', () => {
    const src = new Uint8Array(100);
    const dest = new Uint8Array(100);
    expect(() => copyRows(src, 0, 40, dest, 0, 40, 30, 3)).toThrow(/src of 100 bytes is too short/);
    expect(() => copyRows(src, 0, 30, dest, 10, 40, 30, 3)).toThrow(/dest of 100 bytes is too short/);
    expect(() => copyRows(src, 0, 20, dest, 0, 40, 30, 2)).toThrow(/runBytes must not exceed/);
    expect(() => copyRows(new Float32Array(25) as never, 0, 4, dest, 0, 4, 4, 1)).toThrow(/Uint8Array/);
    expect(() => copyRows(src, -1, 4, dest, 0, 4, 4, 1)).toThrow(/srcStart/);
    copyRows(src, 0, 40, dest, 0, 40, 30, 0); // no rows: nothing to check or copy
  });
});
