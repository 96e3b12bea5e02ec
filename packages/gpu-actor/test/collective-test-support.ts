/** Seeded test inputs and an independent float64 reference for the collectives' tests. */

/** length floats with mixed magnitudes (so summation order would show), from a seeded LCG. */
export function randomFloats(length: number, seed: number): Float32Array {
  let state = seed >>> 0 || 1;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const unit = state / 2 ** 32 - 0.5;
    out[i] = unit * 10 ** ((state >>> 7) % 5);
  }
  return out;
}

/** Sum over ranks by the halving tree ((p0 + p1) + (p2 + p3)), each add rounded to f32 (the groups' documented order). */
export function referenceSum(inputs: Float32Array[], lo = 0, hi = inputs.length): Float32Array {
  if (hi - lo === 1) return inputs[lo];
  const mid = lo + Math.floor((hi - lo) / 2);
  const left = referenceSum(inputs, lo, mid);
  const right = referenceSum(inputs, mid, hi);
  return left.map((value, i) => Math.fround(value + right[i]));
}

export function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.every((value, i) => value === y[i]);
}

/** The parts one after another. */
export function concatFloats(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
