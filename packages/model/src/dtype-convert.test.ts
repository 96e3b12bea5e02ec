import { describe, expect, it } from 'vitest';
import {
  bf16BitsToF32,
  decodeValues,
  encodeF32Array,
  encodeValues,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
} from './dtype-convert.ts';
import { Xoshiro128 } from './prng.ts';

/**
 * Independent round-to-nearest-even oracle: among all finite codes of a 16-bit format, pick
 * the nearest value in float64; on a tie pick the even code. Codes are ordered for
 * non-negative values, so a binary search finds the neighbours.
 */
function nearestEvenCode(
  x: number,
  decode: (bits: number) => number,
  maxFiniteCode: number,
  maxBeforeInf: number,
): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= maxBeforeInf) return sign | (maxFiniteCode + 1);
  let lo = 0;
  let hi = maxFiniteCode;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (decode(mid) <= a) lo = mid;
    else hi = mid - 1;
  }
  if (lo === maxFiniteCode) return sign | lo;
  const below = decode(lo);
  const above = decode(lo + 1);
  if (a - below < above - a) return sign | lo;
  if (a - below > above - a) return sign | (lo + 1);
  return sign | (lo % 2 === 0 ? lo : lo + 1);
}

// Values at or above these round to infinity (halfway between max finite and the next power).
const BF16_INF_THRESHOLD = (2 - 2 ** -8) * 2 ** 127;
const F16_INF_THRESHOLD = 65520;

function randomF32Values(count: number, seed: number): Float32Array {
  const rng = new Xoshiro128(seed);
  const out = new Float32Array(count);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < count; i++) {
    // Half random bit patterns (all exponents), half values in f16 range with random exponents.
    if (i % 2 === 0) bits[i] = rng.nextU32();
    else out[i] = (rng.nextFloat() - 0.5) * 2 ** (Math.floor(rng.nextFloat() * 44) - 28);
    if (Number.isNaN(out[i])) out[i] = 0.5;
  }
  return out;
}

describe('bfloat16', () => {
  it('rounds to nearest even at hand-picked points', () => {
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(f32ToBf16Bits(-2)).toBe(0xc000);
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie -> even (down)
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie -> even (up)
    expect(f32ToBf16Bits(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81); // just above the tie
    expect(f32ToBf16Bits(Number.POSITIVE_INFINITY)).toBe(0x7f80);
    expect(f32ToBf16Bits(3.4e38)).toBe(0x7f80); // rounds past the largest finite value
    expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(Number.NaN)))).toBe(true);
    expect(bf16BitsToF32(0x3f80)).toBe(1);
    expect(bf16BitsToF32(0x4049)).toBe(3.140625);
  });

  it('matches the nearest-even oracle on random float32 values', () => {
    const values = randomF32Values(20000, 1);
    const fast = new Uint8Array(values.length * 2);
    encodeF32Array(values, 'BF16', fast);
    const fastBits = new Uint16Array(fast.buffer);
    for (let i = 0; i < values.length; i++) {
      const expected = nearestEvenCode(values[i], bf16BitsToF32, 0x7f7f, BF16_INF_THRESHOLD);
      expect(f32ToBf16Bits(values[i])).toBe(expected);
      expect(fastBits[i]).toBe(expected);
    }
  });
});

describe('float16', () => {
  it('rounds to nearest even at hand-picked points, including subnormals and overflow', () => {
    expect(f32ToF16Bits(1)).toBe(0x3c00);
    expect(f32ToF16Bits(-0.5)).toBe(0xb800);
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65519)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // tie between 65504 and 65536 -> even -> inf
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001);
    expect(f32ToF16Bits(2 ** -25)).toBe(0x0000); // tie -> even (zero)
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(0x0002); // tie 1.5 -> 2
    expect(f32ToF16Bits(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up into the normal range
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(f16BitsToF32(0x7c00)).toBe(Number.POSITIVE_INFINITY);
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(Number.NaN)))).toBe(true);
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
    expect(f16BitsToF32(0x3555)).toBeCloseTo(0.333251953125, 15);
  });

  it('matches the nearest-even oracle on random float32 values', () => {
    const values = randomF32Values(20000, 2);
    for (let i = 0; i < values.length; i++) {
      expect(f32ToF16Bits(values[i])).toBe(
        nearestEvenCode(values[i], f16BitsToF32, 0x7bff, F16_INF_THRESHOLD),
      );
    }
  });
});

describe('encodeValues / decodeValues', () => {
  it('round-trips every dtype exactly for representable values', () => {
    const values = [0, 1, -2.5, 0.375, 1024, -0.0078125];
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      const bytes = new Uint8Array(values.length * (dtype === 'F32' ? 4 : 2));
      encodeValues(values, dtype, bytes);
      expect([...decodeValues(bytes, dtype)]).toEqual(values);
    }
  });
});
