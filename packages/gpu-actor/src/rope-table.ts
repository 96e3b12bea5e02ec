/**
 * cos/sin rows [numTokens][headDim/2] for the positions of one step, computed once per step
 * in float64 and shared by every layer's q and k rotation.
 */
export function ropeTables(
  positions: Int32Array,
  invFreq: Float64Array,
): { cos: Float32Array; sin: Float32Array } {
  const half = invFreq.length;
  const cos = new Float32Array(positions.length * half);
  const sin = new Float32Array(positions.length * half);
  for (let t = 0; t < positions.length; t++) {
    for (let i = 0; i < half; i++) {
      const angle = positions[t] * invFreq[i];
      cos[t * half + i] = Math.cos(angle);
      sin[t * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
