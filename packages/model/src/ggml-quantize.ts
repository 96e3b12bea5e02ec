import { f16BitsToF32, f32ToF16Bits } from './dtype-convert.ts';
import { kQuantScaleMin } from './ggml-dequantize.ts';
import { type GgmlTypeInfo, ggmlType, QK_K } from './ggml-types.ts';
import { CheckpointError } from './safetensors-format.ts';

const f = Math.fround;

/** C's roundf: halves away from zero. */
function roundAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/** Q8_0 as ggml's reference quantizer: d = amax/127, q = roundf(x/d). */
function quantizeQ8_0(x: Float32Array, xo: number, _block: Uint8Array, view: DataView): void {
  let amax = 0;
  for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[xo + i]));
  const d = f(amax / 127);
  const id = d !== 0 ? f(1 / d) : 0;
  view.setUint16(0, f32ToF16Bits(d), true);
  for (let i = 0; i < 32; i++) view.setInt8(2 + i, roundAway(f(x[xo + i] * id)));
}

/** Q4_0 as ggml's reference quantizer: d = (signed value of largest magnitude) / -8, q = x/d + 8 truncated. */
function quantizeQ4_0(x: Float32Array, xo: number, block: Uint8Array, view: DataView): void {
  let amax = 0;
  let max = 0;
  for (let i = 0; i < 32; i++) {
    const v = x[xo + i];
    if (Math.abs(v) > amax) {
      amax = Math.abs(v);
      max = v;
    }
  }
  const d = f(max / -8);
  const id = d !== 0 ? f(1 / d) : 0;
  view.setUint16(0, f32ToF16Bits(d), true);
  const q = (v: number) => Math.min(15, Math.trunc(f(f(v * id) + 8.5)));
  for (let i = 0; i < 16; i++) block[2 + i] = q(x[xo + i]) | (q(x[xo + 16 + i]) << 4);
}

/**
 * Q4_K: per 32-element sub-block an affine map x ~ scale*q - min (q in 0..15, min >= 0), the 8
 * scales and mins then quantized to 6 bits against the super-block's largest. Simpler than
 * llama.cpp's iterative search (plain min/max per sub-block) but the same format; the codes are
 * chosen against the scales as stored, so the error is what the stored block decodes to.
 */
function quantizeQ4_K(x: Float32Array, xo: number, block: Uint8Array, view: DataView): void {
  const scales = new Float64Array(8);
  const mins = new Float64Array(8);
  for (let j = 0; j < 8; j++) {
    let lo = 0;
    let hi = 0;
    for (let l = 0; l < 32; l++) {
      lo = Math.min(lo, x[xo + 32 * j + l]);
      hi = Math.max(hi, x[xo + 32 * j + l]);
    }
    scales[j] = (hi - lo) / 15;
    mins[j] = -lo;
  }
  const maxScale = Math.max(...scales);
  const maxMin = Math.max(...mins);
  const d = f16BitsToF32(f32ToF16Bits(maxScale / 63));
  const dmin = f16BitsToF32(f32ToF16Bits(maxMin / 63));
  const ls = new Uint8Array(8);
  const lm = new Uint8Array(8);
  for (let j = 0; j < 8; j++) {
    ls[j] = d > 0 ? Math.min(63, Math.ceil(scales[j] / d)) : 0;
    lm[j] = dmin > 0 ? Math.min(63, Math.round(mins[j] / dmin)) : 0;
  }
  view.setUint16(0, f32ToF16Bits(d), true);
  view.setUint16(2, f32ToF16Bits(dmin), true);
  const packed = block.subarray(4, 16);
  packed.fill(0);
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      packed[j] = ls[j];
      packed[j + 4] = lm[j];
    } else {
      packed[j + 4] = (ls[j] & 0xf) | ((lm[j] & 0xf) << 4);
      packed[j - 4] |= (ls[j] >> 4) << 6;
      packed[j] |= (lm[j] >> 4) << 6;
    }
  }
  const codes = new Uint8Array(QK_K);
  for (let j = 0; j < 8; j++) {
    const [sc, m] = kQuantScaleMin(packed, j);
    const dl = f(d * sc);
    const ml = f(dmin * m);
    for (let l = 0; l < 32; l++) {
      const q = dl > 0 ? Math.round((x[xo + 32 * j + l] + ml) / dl) : 0;
      codes[32 * j + l] = Math.max(0, Math.min(15, q));
    }
  }
  const qs = block.subarray(16);
  for (let pair = 0; pair < 4; pair++) {
    for (let l = 0; l < 32; l++) qs[32 * pair + l] = codes[64 * pair + l] | (codes[64 * pair + 32 + l] << 4);
  }
}

type BlockEncoder = (x: Float32Array, xo: number, block: Uint8Array, view: DataView) => void;

const BLOCK_ENCODERS: Partial<Record<GgmlTypeInfo['name'], BlockEncoder>> = {
  Q8_0: quantizeQ8_0,
  Q4_0: quantizeQ4_0,
  Q4_K: quantizeQ4_K,
};

/** The types `quantize` can write. */
export const QUANTIZE_TYPES = ['Q8_0', 'Q4_0', 'Q4_K'] as const;
export type QuantizeTypeName = (typeof QUANTIZE_TYPES)[number];

/** Encodes float32 values (a whole number of blocks) as `typeName` blocks. */
export function quantize(typeName: QuantizeTypeName, values: Float32Array): Uint8Array {
  const type = ggmlType(typeName);
  if (values.length % type.blockSize !== 0) {
    throw new CheckpointError(`${values.length} values is not a whole number of ${typeName} blocks`);
  }
  const blocks = values.length / type.blockSize;
  const out = new Uint8Array(blocks * type.typeSize);
  const encode = BLOCK_ENCODERS[typeName]!;
  for (let b = 0; b < blocks; b++) {
    const at = b * type.typeSize;
    encode(
      values,
      b * type.blockSize,
      out.subarray(at, at + type.typeSize),
      new DataView(out.buffer, at, type.typeSize),
    );
  }
  return out;
}
