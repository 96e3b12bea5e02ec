import { describe, expect, it } from 'vitest';
import { f16BitsToF32, f32ToF16Bits } from './dtype-convert.ts';
import { dequantize } from './ggml-dequantize.ts';
import { quantize } from './ggml-quantize.ts';
import { type GgmlTypeName, ggmlType } from './ggml-types.ts';
import { Xoshiro128 } from './prng.ts';

const f = Math.fround;
const SEED = Number(process.env.SEESAW_TEST_SEED ?? 1234);
console.log(`ggml-dequantize.test seed ${SEED}`);

/**
 * The specification, element by element (ggml-common.h block structs + dequantize_row_*),
 * written with arithmetic on byte values instead of the production decoder's nibble loops.
 */
const bitsOf = (byte: number, from: number, count: number) => Math.floor(byte / 2 ** from) % 2 ** count;
const half = (bytes: Uint8Array, at: number) => f16BitsToF32(bytes[at] + 256 * bytes[at + 1]);
const signedByte = (b: number) => (b >= 128 ? b - 256 : b);

/** 6-bit scale and min of sub-block j of the 12-byte k-quant scales field. */
function specScaleMin(s: Uint8Array, j: number): [number, number] {
  if (j < 4) return [bitsOf(s[j], 0, 6), bitsOf(s[j + 4], 0, 6)];
  return [
    bitsOf(s[j + 4], 0, 4) + 16 * bitsOf(s[j - 4], 6, 2),
    bitsOf(s[j + 4], 4, 4) + 16 * bitsOf(s[j], 6, 2),
  ];
}

const SPEC: Partial<Record<GgmlTypeName, (block: Uint8Array, i: number) => number>> = {
  // block_q8_0 { half d; int8 qs[32] }
  Q8_0: (b, i) => f(signedByte(b[2 + i]) * half(b, 0)),
  // block_q4_0 { half d; uint8 qs[16] }: element i < 16 is the low nibble of qs[i], i >= 16 the high one of qs[i-16]
  Q4_0: (b, i) => f(((i < 16 ? bitsOf(b[2 + i], 0, 4) : bitsOf(b[2 + i - 16], 4, 4)) - 8) * half(b, 0)),
  // block_q4_K { half d; half dmin; uint8 scales[12]; uint8 qs[128] }
  Q4_K: (b, i) => {
    const j = Math.floor(i / 32);
    const byte = b[16 + 32 * Math.floor(j / 2) + (i % 32)];
    const q = j % 2 === 0 ? bitsOf(byte, 0, 4) : bitsOf(byte, 4, 4);
    const [sc, m] = specScaleMin(b.subarray(4, 16), j);
    return f(f(f(half(b, 0) * sc) * q) - f(half(b, 2) * m));
  },
  // block_q5_K { half d; half dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128] }: bit j of qh[l] is bit 4 of element 32j+l
  Q5_K: (b, i) => {
    const j = Math.floor(i / 32);
    const l = i % 32;
    const byte = b[48 + 32 * Math.floor(j / 2) + l];
    const q = (j % 2 === 0 ? bitsOf(byte, 0, 4) : bitsOf(byte, 4, 4)) + 16 * bitsOf(b[16 + l], j, 1);
    const [sc, m] = specScaleMin(b.subarray(4, 16), j);
    return f(f(f(half(b, 0) * sc) * q) - f(half(b, 2) * m));
  },
  // block_q6_K { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d }
  Q6_K: (b, i) => {
    const h = Math.floor(i / 128);
    const run = Math.floor((i % 128) / 32);
    const l = i % 32;
    const lowByte = b[64 * h + l + (run % 2) * 32];
    const low = run < 2 ? bitsOf(lowByte, 0, 4) : bitsOf(lowByte, 4, 4);
    const high = bitsOf(b[128 + 32 * h + l], 2 * run, 2);
    const scale = signedByte(b[192 + 8 * h + Math.floor(l / 16) + 2 * run]);
    return f(f(half(b, 208) * scale) * (low + 16 * high - 32));
  },
};

/** Random block bytes with finite f16 scales at the given offsets (random bits elsewhere). */
function randomBlocks(
  rng: Xoshiro128,
  name: GgmlTypeName,
  blocks: number,
  halfOffsets: number[],
): Uint8Array {
  const type = ggmlType(name);
  const bytes = new Uint8Array(blocks * type.typeSize);
  for (let i = 0; i < bytes.length; i++) bytes[i] = rng.nextU32() & 0xff;
  for (let b = 0; b < blocks; b++) {
    for (const at of halfOffsets) {
      const bits = f32ToF16Bits((rng.nextFloat() * 2 - 1) * 0.05);
      bytes[b * type.typeSize + at] = bits & 0xff;
      bytes[b * type.typeSize + at + 1] = bits >> 8;
    }
  }
  return bytes;
}

const SCALE_OFFSETS: Array<[GgmlTypeName, number[]]> = [
  ['Q8_0', [0]],
  ['Q4_0', [0]],
  ['Q4_K', [0, 2]],
  ['Q5_K', [0, 2]],
  ['Q6_K', [208]],
];

describe('dequantize follows the ggml block specification', () => {
  for (const [name, offsets] of SCALE_OFFSETS) {
    it(`${name}: random blocks decode bit-exactly like the element-wise spec`, () => {
      const rng = new Xoshiro128(SEED + offsets.length * 17 + name.length);
      const type = ggmlType(name);
      const blocks = 9;
      const bytes = randomBlocks(rng, name, blocks, offsets);
      const got = dequantize(type, bytes);
      const spec = SPEC[name]!;
      for (let b = 0; b < blocks; b++) {
        const block = bytes.subarray(b * type.typeSize, (b + 1) * type.typeSize);
        for (let i = 0; i < type.blockSize; i++) {
          const want = spec(block, i);
          if (!Object.is(got[b * type.blockSize + i], want)) {
            throw new Error(
              `${name} block ${b} element ${i}: got ${got[b * type.blockSize + i]}, spec ${want}`,
            );
          }
        }
      }
    });
  }

  it('F32, F16 and BF16 decode their bit patterns', () => {
    const bytes = new Uint8Array([0x00, 0x3c, 0x00, 0xc0]);
    expect([...dequantize(ggmlType('F16'), bytes)]).toEqual([1, -2]);
    expect([...dequantize(ggmlType('BF16'), new Uint8Array([0x80, 0x3f, 0x00, 0xc0]))]).toEqual([1, -2]);
    expect([...dequantize(ggmlType('F32'), new Uint8Array(new Float32Array([0.5, -3]).buffer))]).toEqual([
      0.5, -3,
    ]);
  });

  it('refuses a partial block', () => {
    expect(() => dequantize(ggmlType('Q8_0'), new Uint8Array(33))).toThrow(/whole number of Q8_0 blocks/);
  });
});

describe('quantize writes blocks that decode close to the input', () => {
  const rng = new Xoshiro128(SEED + 99);
  const values = new Float32Array(4 * 256);
  rng.fillUniform(values, 0.02);
  values[5] = 0.3; // an outlier, as real weights have
  for (const [name, relativeRms] of [
    ['Q8_0', 0.01],
    ['Q4_0', 0.15],
    ['Q4_K', 0.15],
  ] as const) {
    it(`${name}: per-block error within one quantization step, RMS error ${relativeRms} of RMS`, () => {
      const type = ggmlType(name);
      const decoded = dequantize(type, quantize(name, values));
      let err2 = 0;
      let val2 = 0;
      for (let b = 0; b < values.length / type.blockSize; b++) {
        let lo = 0;
        let hi = 0;
        for (let i = b * type.blockSize; i < (b + 1) * type.blockSize; i++) {
          lo = Math.min(lo, values[i]);
          hi = Math.max(hi, values[i]);
        }
        // One step of the coarsest code in the block (k-quants: a sub-block step is at most this).
        const levels = name === 'Q8_0' ? 254 : 15;
        const step = (hi - lo) / levels;
        for (let i = b * type.blockSize; i < (b + 1) * type.blockSize; i++) {
          const e = Math.abs(decoded[i] - values[i]);
          expect(e, `${name} element ${i}`).toBeLessThanOrEqual(step * 1.1 + 1e-7);
          err2 += e * e;
          val2 += values[i] * values[i];
        }
      }
      expect(Math.sqrt(err2 / val2)).toBeLessThan(relativeRms);
    });
  }

  it('Q8_0 and Q4_0: quantizing the dequantized values gives the same blocks back', () => {
    for (const name of ['Q8_0', 'Q4_0'] as const) {
      const blocks = quantize(name, values);
      const again = quantize(name, dequantize(ggmlType(name), blocks));
      expect(Buffer.from(again).equals(Buffer.from(blocks)), name).toBe(true);
    }
  });

  it('an all-zero block stays zero', () => {
    for (const name of ['Q8_0', 'Q4_0', 'Q4_K'] as const) {
      const type = ggmlType(name);
      const zeros = new Float32Array(type.blockSize);
      expect([...dequantize(type, quantize(name, zeros))].every((v) => v === 0)).toBe(true);
    }
  });
});
