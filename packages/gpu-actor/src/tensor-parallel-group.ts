/**
 * The collectives one tensor-parallel rank needs. Every rank of a group must call the same
 * operations in the same order (with equal buffer lengths for allReduceSum); results are
 * bit-identical on every rank.
 */
export interface TensorParallelGroup {
  readonly size: number;
  readonly rank: number;
  /** buf := sum over ranks of buf, summed in rank order (rank 0 first) on every rank. */
  allReduceSum(buf: Float32Array): Promise<void>;
  /**
   * out := concatenation of every rank's `local`, rank 0 first. Ranks may contribute different
   * lengths; out.length must equal their sum.
   */
  allGather(local: Float32Array, out: Float32Array): Promise<void>;
}

/**
 * out[i] = sum of parts[r][offset + i] over r = 0, 1, ... in that order, accumulated in float64
 * and rounded once. The one summation every group implementation uses, so that any rank (and
 * either implementation) gets the same bits from the same inputs.
 */
export function sumInRankOrder(
  out: Float32Array,
  parts: ReadonlyArray<Float32Array>,
  partOffset = 0,
  length = out.length,
): void {
  for (let i = 0; i < length; i++) {
    let sum = 0;
    for (let r = 0; r < parts.length; r++) sum += parts[r][partOffset + i];
    out[i] = sum;
  }
}
