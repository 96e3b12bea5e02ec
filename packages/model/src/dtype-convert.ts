import type { TensorDType } from './safetensors-format.ts';

// Shared scratch for reinterpreting float32 bits; conversions are single-threaded per call.
const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

export function dtypeByteSize(dtype: TensorDType): number {
  return dtype === 'F32' ? 4 : 2;
}

/** float32 -> bfloat16 bits with round-to-nearest-even; NaN stays a (quiet) NaN. */
export function f32ToBf16Bits(value: number): number {
  f32Scratch[0] = value;
  const bits = u32Scratch[0];
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x007fffff) !== 0)
    return ((bits >>> 16) | 0x0040) & 0xffff;
  // Adding 0x7fff plus the lowest kept bit rounds half to even; overflow carries into the exponent (-> inf).
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function bf16BitsToF32(bits: number): number {
  u32Scratch[0] = (bits & 0xffff) << 16;
  return f32Scratch[0];
}

/** float32 -> IEEE half bits with round-to-nearest-even, subnormals, overflow to inf, NaN kept. */
export function f32ToF16Bits(value: number): number {
  f32Scratch[0] = value;
  const bits = u32Scratch[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x007fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const halfExp = exp - 127 + 15;
  if (halfExp >= 0x1f) return sign | 0x7c00;
  if (halfExp <= 0) {
    // Subnormal half (or zero): value = m * 2^-24 with m an integer < 1024.
    if (halfExp < -10) return sign;
    const full = mant | 0x00800000;
    const shift = 14 - halfExp;
    let m = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (m & 1) === 1)) m++;
    return sign | m;
  }
  let h = (halfExp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A mantissa carry rolls into the exponent, which is the right result (up to inf).
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

export function f16BitsToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

const isLittleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Fast path of encodeValues for float32 input (same results): bulk copies and integer
 * rounding on the raw bits instead of a DataView call per element.
 */
export function encodeF32Array(values: Float32Array, dtype: TensorDType, dest: Uint8Array): void {
  const n = values.length;
  if (!isLittleEndianHost || dest.byteOffset % 4 !== 0 || values.byteOffset % 4 !== 0 || dtype === 'F16') {
    encodeValues(values, dtype, dest);
    return;
  }
  if (dtype === 'F32') {
    dest.set(new Uint8Array(values.buffer, values.byteOffset, n * 4));
    return;
  }
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  const out = new Uint16Array(dest.buffer, dest.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const b = bits[i];
    if ((b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0) out[i] = ((b >>> 16) | 0x0040) & 0xffff;
    else out[i] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
  }
}

/** Encodes values (rounded through float32) as little-endian bytes of dtype into dest at element offset. */
export function encodeValues(
  values: ArrayLike<number>,
  dtype: TensorDType,
  dest: Uint8Array,
  elementOffset = 0,
): void {
  const view = new DataView(dest.buffer, dest.byteOffset, dest.byteLength);
  const n = values.length;
  if (dtype === 'F32') {
    for (let i = 0; i < n; i++) view.setFloat32((elementOffset + i) * 4, values[i], true);
  } else if (dtype === 'BF16') {
    for (let i = 0; i < n; i++) view.setUint16((elementOffset + i) * 2, f32ToBf16Bits(values[i]), true);
  } else {
    for (let i = 0; i < n; i++) view.setUint16((elementOffset + i) * 2, f32ToF16Bits(values[i]), true);
  }
}

/** Decodes little-endian bytes of dtype into float64 values (exact: every F32/F16/BF16 fits). */
export function decodeValues(bytes: Uint8Array, dtype: TensorDType, out?: Float64Array): Float64Array {
  const n = bytes.byteLength / dtypeByteSize(dtype);
  const result = out ?? new Float64Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'F32') {
    for (let i = 0; i < n; i++) result[i] = view.getFloat32(i * 4, true);
  } else if (dtype === 'BF16') {
    for (let i = 0; i < n; i++) result[i] = bf16BitsToF32(view.getUint16(i * 2, true));
  } else {
    for (let i = 0; i < n; i++) result[i] = f16BitsToF32(view.getUint16(i * 2, true));
  }
  return result;
}
