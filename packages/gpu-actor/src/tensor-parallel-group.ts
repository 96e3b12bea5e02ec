import * as kernels from '@seesaw/kernels';

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
 * out[i] = (((parts[0][offset + i] + parts[1][offset + i]) + parts[2][...]) + ...) in f32, rank
 * 0 first. The one summation every group implementation uses, so that any rank (and either
 * implementation) gets the same bits from the same inputs; the adds run in the native kernel
 * (vectorised, memory-bound) since prefill all-reduces move megabytes per layer.
 */
export function sumInRankOrder(
  out: Float32Array,
  parts: ReadonlyArray<Float32Array>,
  partOffset = 0,
  length = out.length,
): void {
  const target = out.subarray(0, length);
  const views = parts.map((part) => {
    const view = part.subarray(partOffset, partOffset + length);
    // A part sharing out's memory is read before out is overwritten.
    return view.buffer === target.buffer ? view.slice() : view;
  });
  target.set(views[0]);
  for (let r = 1; r < views.length; r++) kernels.addInPlace(target, views[r]);
}
