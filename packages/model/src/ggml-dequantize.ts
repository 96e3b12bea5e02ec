import { bf16BitsToF32, f16BitsToF32 } from './dtype-convert.ts';
import { type GgmlTypeInfo, QK_K } from './ggml-types.ts';
import { CheckpointError } from './safetensors-format.ts';

const f = Math.fround;

/**
 * The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K super-block, from its 12 packed
 * bytes: sub-blocks 0-3 keep theirs in the low 6 bits of bytes j and j+4; sub-blocks 4-7 keep their
 * low 4 bits in the nibbles of byte j+4 and their top 2 bits in the top bits of bytes j-4 and j.
 */
export function kQuantScaleMin(scales: Uint8Array, j: number): [scale: number, min: number] {
  if (j < 4) return [scales[j] & 63, scales[j + 4] & 63];
  return [
    (scales[j + 4] & 0xf) | ((scales[j - 4] >> 6) << 4),
    (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4),
  ];
}

function dequantizeQ8_0(block: Uint8Array, view: DataView, out: Float32Array, o: number): void {
  const d = f16BitsToF32(view.getUint16(0, true));
  for (let i = 0; i < 32; i++) out[o + i] = f(((block[2 + i] << 24) >> 24) * d);
}

function dequantizeQ4_0(block: Uint8Array, view: DataView, out: Float32Array, o: number): void {
  const d = f16BitsToF32(view.getUint16(0, true));
  for (let i = 0; i < 16; i++) {
    const byte = block[2 + i];
    out[o + i] = f(((byte & 0xf) - 8) * d);
    out[o + i + 16] = f(((byte >> 4) - 8) * d);
  }
}

/** Q4_K: 8 sub-blocks of 32; element = d*scale*q - dmin*min, q a 4-bit nibble. */
function dequantizeQ4_K(block: Uint8Array, view: DataView, out: Float32Array, o: number): void {
  const d = f16BitsToF32(view.getUint16(0, true));
  const dmin = f16BitsToF32(view.getUint16(2, true));
  const scales = block.subarray(4, 16);
  const qs = block.subarray(16, 16 + QK_K / 2);
  // Each 32 bytes of qs hold two sub-blocks: low nibbles the first, high nibbles the second.
  for (let pair = 0; pair < 4; pair++) {
    const [sc0, m0] = kQuantScaleMin(scales, 2 * pair);
    const [sc1, m1] = kQuantScaleMin(scales, 2 * pair + 1);
    const d0 = f(d * sc0);
    const min0 = f(dmin * m0);
    const d1 = f(d * sc1);
    const min1 = f(dmin * m1);
    for (let l = 0; l < 32; l++) {
      const byte = qs[32 * pair + l];
      out[o + 64 * pair + l] = f(f(d0 * (byte & 0xf)) - min0);
      out[o + 64 * pair + 32 + l] = f(f(d1 * (byte >> 4)) - min1);
    }
  }
}

/** Q5_K: Q4_K plus a fifth bit per element from qh (bit 2*pair for the first sub-block, 2*pair+1 for the second). */
function dequantizeQ5_K(block: Uint8Array, view: DataView, out: Float32Array, o: number): void {
  const d = f16BitsToF32(view.getUint16(0, true));
  const dmin = f16BitsToF32(view.getUint16(2, true));
  const scales = block.subarray(4, 16);
  const qh = block.subarray(16, 16 + QK_K / 8);
  const qs = block.subarray(16 + QK_K / 8, 16 + QK_K / 8 + QK_K / 2);
  for (let pair = 0; pair < 4; pair++) {
    const [sc0, m0] = kQuantScaleMin(scales, 2 * pair);
    const [sc1, m1] = kQuantScaleMin(scales, 2 * pair + 1);
    const d0 = f(d * sc0);
    const min0 = f(dmin * m0);
    const d1 = f(d * sc1);
    const min1 = f(dmin * m1);
    const bit0 = 1 << (2 * pair);
    const bit1 = bit0 << 1;
    for (let l = 0; l < 32; l++) {
      const byte = qs[32 * pair + l];
      const high0 = qh[l] & bit0 ? 16 : 0;
      const high1 = qh[l] & bit1 ? 16 : 0;
      out[o + 64 * pair + l] = f(f(d0 * ((byte & 0xf) + high0)) - min0);
      out[o + 64 * pair + 32 + l] = f(f(d1 * ((byte >> 4) + high1)) - min1);
    }
  }
}

/** Q6_K: 16 sub-blocks of 16 with signed 8-bit scales; q = (4 low bits | 2 high bits << 4) - 32. */
function dequantizeQ6_K(block: Uint8Array, view: DataView, out: Float32Array, o: number): void {
  const ql = block.subarray(0, QK_K / 2);
  const qh = block.subarray(QK_K / 2, QK_K / 2 + QK_K / 4);
  const sc = new Int8Array(block.buffer, block.byteOffset + QK_K / 2 + QK_K / 4, QK_K / 16);
  const d = f16BitsToF32(view.getUint16(QK_K / 2 + QK_K / 4 + QK_K / 16, true));
  // Two halves of 128 elements; in each, 64 ql bytes and 32 qh bytes make four runs of 32.
  for (let half = 0; half < 2; half++) {
    const qlh = 64 * half;
    const qhh = 32 * half;
    const sch = 8 * half;
    const yo = o + 128 * half;
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      const h = qh[qhh + l];
      const q1 = ((ql[qlh + l] & 0xf) | ((h & 3) << 4)) - 32;
      const q2 = ((ql[qlh + l + 32] & 0xf) | (((h >> 2) & 3) << 4)) - 32;
      const q3 = ((ql[qlh + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
      const q4 = ((ql[qlh + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
      out[yo + l] = f(f(d * sc[sch + is]) * q1);
      out[yo + l + 32] = f(f(d * sc[sch + is + 2]) * q2);
      out[yo + l + 64] = f(f(d * sc[sch + is + 4]) * q3);
      out[yo + l + 96] = f(f(d * sc[sch + is + 6]) * q4);
    }
  }
}

type BlockDecoder = (block: Uint8Array, view: DataView, out: Float32Array, o: number) => void;

const BLOCK_DECODERS: Partial<Record<GgmlTypeInfo['name'], BlockDecoder>> = {
  Q8_0: dequantizeQ8_0,
  Q4_0: dequantizeQ4_0,
  Q4_K: dequantizeQ4_K,
  Q5_K: dequantizeQ5_K,
  Q6_K: dequantizeQ6_K,
};

/**
 * Decodes `bytes` (whole blocks / elements of `type`) to float32, exactly as ggml's
 * dequantize_row_* does (every product rounded to f32 in the same order).
 */
export function dequantize(type: GgmlTypeInfo, bytes: Uint8Array, out?: Float32Array): Float32Array {
  if (bytes.byteLength % type.typeSize !== 0) {
    throw new CheckpointError(`${bytes.byteLength} bytes is not a whole number of ${type.name} blocks`);
  }
  const blocks = bytes.byteLength / type.typeSize;
  const result = out ?? new Float32Array(blocks * type.blockSize);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (type.name === 'F32') {
    for (let i = 0; i < blocks; i++) result[i] = view.getFloat32(4 * i, true);
    return result;
  }
  if (type.name === 'F16' || type.name === 'BF16') {
    const decode = type.name === 'F16' ? f16BitsToF32 : bf16BitsToF32;
    for (let i = 0; i < blocks; i++) result[i] = decode(view.getUint16(2 * i, true));
    return result;
  }
  const decoder = BLOCK_DECODERS[type.name]!;
  for (let b = 0; b < blocks; b++) {
    const at = b * type.typeSize;
    const block = bytes.subarray(at, at + type.typeSize);
    decoder(
      block,
      new DataView(bytes.buffer, bytes.byteOffset + at, type.typeSize),
      result,
      b * type.blockSize,
    );
  }
  return result;
}
