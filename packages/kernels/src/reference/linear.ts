// Float64 oracle for matmul: out[r][j] = sum_k x[r][k] * w[j][k] (+ bias[j]).

/** x [m][k], w [n][k] (the nn.Linear layout), bias [n]; returns out [m][n]. */
export function matmul(
  x: Float64Array,
  m: number,
  w: Float64Array,
  n: number,
  k: number,
  bias?: Float64Array,
): Float64Array {
  const out = new Float64Array(m * n);
  for (let r = 0; r < m; r++) {
    for (let j = 0; j < n; j++) {
      let sum = bias ? bias[j] : 0;
      for (let i = 0; i < k; i++) sum += x[r * k + i] * w[j * k + i];
      out[r * n + j] = sum;
    }
  }
  return out;
}
