import { describe, expect, it } from 'vitest';
import { makeRng, testSeed } from '../test/test-support.ts';
import { f32ToBf16, f32ToF16, reference, weightToFloat64 } from './index.ts';

const rng = makeRng(testSeed());

/** Random f32 values over many binades, plus the special cases of both formats. */
function sampleValues(): Float32Array {
  const values: number[] = [
    0, -0, 1, -1, 65504, 65519, 65520, 1e6, -1e6, 6.1e-5, 5.96e-8, 2.98e-8, 2.99e-8, 1e-9,
  ];
  values.push(Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 3.4e38, 1.17549435e-38, 1e-40);
  for (let i = 0; i < 20_000; i++) {
    const exponent = Math.floor(rng() * 80) - 40;
    values.push((rng() * 2 - 1) * 2 ** exponent);
  }
  // exact ties between two bf16 neighbours (bit 15 set, lower bits clear) and f16 neighbours
  const bits = new Uint32Array(1);
  const f = new Float32Array(bits.buffer);
  for (let i = 0; i < 2000; i++) {
    bits[0] = ((Math.floor(rng() * 0x7f00) + 0x80) << 16) | 0x8000;
    values.push(f[0]);
    bits[0] = ((Math.floor(rng() * 30) + 103) << 23) | (Math.floor(rng() * 1024) << 13) | 0x1000;
    values.push(f[0]);
  }
  return Float32Array.from(values);
}

describe('f32 -> 16-bit conversion', () => {
  const src = sampleValues();

  it('f32ToBf16 rounds to nearest even like the reference encoder', () => {
    const dst = new Uint16Array(src.length);
    f32ToBf16(src, dst);
    for (let i = 0; i < src.length; i++)
      expect(dst[i], `value ${src[i]}`).toBe(reference.numberToBf16(src[i]));
  });

  it('f32ToF16 rounds to nearest even like the reference encoder (subnormals, overflow)', () => {
    const dst = new Uint16Array(src.length);
    f32ToF16(src, dst);
    for (let i = 0; i < src.length; i++)
      expect(dst[i], `value ${src[i]}`).toBe(reference.numberToF16(src[i]));
  });

  it('NaN stays NaN in both formats', () => {
    const dst = new Uint16Array(2);
    for (const convert of [f32ToBf16, f32ToF16]) {
      convert(Float32Array.of(Number.NaN, -Number.NaN), dst);
      const w = weightToFloat64({
        dtype: convert === f32ToBf16 ? 'bf16' : 'f16',
        rows: 1,
        cols: 2,
        data: dst,
      });
      expect(Number.isNaN(w[0]) && Number.isNaN(w[1])).toBe(true);
    }
  });

  it('decoding a round-tripped value is within half an ulp of the original', () => {
    const bf = new Uint16Array(src.length);
    const half = new Uint16Array(src.length);
    f32ToBf16(src, bf);
    f32ToF16(src, half);
    const bfBack = weightToFloat64({ dtype: 'bf16', rows: 1, cols: src.length, data: bf });
    const halfBack = weightToFloat64({ dtype: 'f16', rows: 1, cols: src.length, data: half });
    for (let i = 0; i < src.length; i++) {
      const v = src[i];
      if (!Number.isFinite(v)) continue;
      // above the largest bf16 (0x7f7f, about 3.39e38) values round up to infinity
      if (Math.abs(v) < 3.38e38)
        expect(Math.abs(bfBack[i] - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -8 + 2 ** -134);
      if (Math.abs(v) < 65504)
        expect(Math.abs(halfBack[i] - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11 + 2 ** -25);
    }
  });
});
