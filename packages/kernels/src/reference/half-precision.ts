// 16-bit float formats by arithmetic on numbers (no bit tricks on f32), for the test oracle.

/** bf16 bit pattern -> value: sign, 8-bit exponent (bias 127), 7-bit fraction. */
export function bf16ToNumber(bits: number): number {
  return decode(bits, 8, 7);
}

/** IEEE binary16 bit pattern -> value: sign, 5-bit exponent (bias 15), 10-bit fraction. */
export function f16ToNumber(bits: number): number {
  return decode(bits, 5, 10);
}

/** Nearest bf16 (ties to even), overflow to ±inf; NaN -> a quiet NaN. */
export function numberToBf16(value: number): number {
  return encode(value, 8, 7);
}

/** Nearest binary16 (ties to even), overflow to ±inf, subnormals kept; NaN -> a quiet NaN. */
export function numberToF16(value: number): number {
  return encode(value, 5, 10);
}

function decode(bits: number, expBits: number, fracBits: number): number {
  const sign = bits >> (expBits + fracBits) ? -1 : 1;
  const expMax = (1 << expBits) - 1;
  const bias = (1 << (expBits - 1)) - 1;
  const exponent = (bits >> fracBits) & expMax;
  const fraction = bits & ((1 << fracBits) - 1);
  if (exponent === expMax) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  if (exponent === 0) return sign * fraction * 2 ** (1 - bias - fracBits);
  return sign * (1 + fraction / 2 ** fracBits) * 2 ** (exponent - bias);
}

function encode(value: number, expBits: number, fracBits: number): number {
  const expMax = (1 << expBits) - 1;
  const bias = (1 << (expBits - 1)) - 1;
  const signBit = value < 0 || Object.is(value, -0) ? 1 << (expBits + fracBits) : 0;
  if (Number.isNaN(value)) return (expMax << fracBits) | (1 << (fracBits - 1));
  const a = Math.abs(value);
  if (a === Number.POSITIVE_INFINITY) return signBit | (expMax << fracBits);
  if (a === 0) return signBit;
  // Quantum (spacing of representable values) at a's binade; subnormals share the smallest one.
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e -= 1;
  if (2 ** (e + 1) <= a) e += 1;
  const minExp = 1 - bias;
  const quantumExp = Math.max(e, minExp) - fracBits;
  const scaled = a / 2 ** quantumExp; // exact: a power-of-two scaling
  let units = Math.floor(scaled);
  const rest = scaled - units;
  if (rest > 0.5 || (rest === 0.5 && units % 2 === 1)) units += 1;
  // units counts quanta; re-derive the fields (rounding may carry into the next binade).
  let exponent: number;
  let fraction: number;
  if (e < minExp) {
    // subnormal range: units < 2^fracBits, or exactly 2^fracBits after rounding up = min normal.
    if (units >= 2 ** fracBits) {
      exponent = 1;
      fraction = units - 2 ** fracBits;
    } else {
      exponent = 0;
      fraction = units;
    }
  } else {
    exponent = e + bias;
    if (units >= 2 ** (fracBits + 1)) {
      exponent += 1;
      units /= 2;
    }
    fraction = units - 2 ** fracBits;
  }
  if (exponent >= expMax) return signBit | (expMax << fracBits);
  return signBit | (exponent << fracBits) | fraction;
}
