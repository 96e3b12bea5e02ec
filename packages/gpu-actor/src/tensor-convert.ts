import type { TensorDType } from '@seesaw/model';

/** Decodes an IEEE half-precision bit pattern. */
function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/**
 * Widens a small tensor (norm weights, biases) to f32. Only vectors go through here: big
 * matrices stay in their checkpoint dtype and are widened in registers by the kernels.
 */
export function bytesToFloat32(bytes: Uint8Array, dtype: TensorDType): Float32Array {
  if (dtype === 'F32') {
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  }
  const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  const out = new Float32Array(halves.length);
  if (dtype === 'BF16') {
    const widened = new Uint32Array(out.buffer);
    for (let i = 0; i < halves.length; i++) widened[i] = halves[i] << 16;
  } else {
    for (let i = 0; i < halves.length; i++) out[i] = halfToFloat(halves[i]);
  }
  return out;
}
