// Float64 oracles for the row-wise kernels. Each returns a new array.

/** Rows of weight.length: x / sqrt(mean(x^2) + eps) * weight. */
export function rmsNorm(x: Float64Array, weight: Float64Array, eps: number): Float64Array {
  const cols = weight.length;
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / cols; r++) {
    let sumSq = 0;
    for (let i = 0; i < cols; i++) sumSq += x[r * cols + i] ** 2;
    const inv = 1 / Math.sqrt(sumSq / cols + eps);
    for (let i = 0; i < cols; i++) out[r * cols + i] = x[r * cols + i] * inv * weight[i];
  }
  return out;
}

export function add(x: Float64Array, y: Float64Array): Float64Array {
  return x.map((v, i) => v + y[i]);
}

/** Rotate-half RoPE on a copy of x; untouched elements (stride padding) are copied as is. */
export function rope(
  x: Float64Array,
  numTokens: number,
  numHeads: number,
  headDim: number,
  rowStride: number,
  cos: Float64Array,
  sin: Float64Array,
): Float64Array {
  const out = Float64Array.from(x);
  const half = headDim / 2;
  for (let t = 0; t < numTokens; t++) {
    for (let h = 0; h < numHeads; h++) {
      const base = t * rowStride + h * headDim;
      for (let i = 0; i < half; i++) {
        const a = x[base + i];
        const b = x[base + i + half];
        const c = cos[t * half + i];
        const s = sin[t * half + i];
        out[base + i] = a * c - b * s;
        out[base + i + half] = b * c + a * s;
      }
    }
  }
  return out;
}

/** gateUp [rows][2I] -> [rows][I]: silu(gate) * up, silu(g) = g / (1 + e^-g). */
export function siluMul(gateUp: Float64Array, rows: number, intermediate: number): Float64Array {
  const out = new Float64Array(rows * intermediate);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < intermediate; j++) {
      const g = gateUp[r * 2 * intermediate + j];
      const u = gateUp[r * 2 * intermediate + intermediate + j];
      out[r * intermediate + j] = (g / (1 + Math.exp(-g))) * u;
    }
  }
  return out;
}

/** table [vocab][hidden]; returns [ids.length][hidden]. */
export function embed(table: Float64Array, hidden: number, ids: ArrayLike<number>): Float64Array {
  const out = new Float64Array(ids.length * hidden);
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t];
    if (!Number.isInteger(id) || id < 0 || id * hidden >= table.length)
      throw new RangeError(`bad token id ${id}`);
    out.set(table.subarray(id * hidden, (id + 1) * hidden), t * hidden);
  }
  return out;
}
