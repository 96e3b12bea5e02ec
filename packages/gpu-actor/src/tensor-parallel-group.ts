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
 * out[i] = the halving tree of docs/determinism.md over the rank partials, every add in f32:
 * T2 p0 + p1, T4 (p0 + p1) + (p2 + p3), T8 ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7)).
 * A row-parallel rank's partial is a subtree of the matmul's canonical chunk tree, so this
 * reproduces the single-device bits. The one summation every group implementation uses, so
 * any rank (and any implementation) gets the same bits from the same inputs; the adds run in
 * the native kernel (vectorised, memory-bound) since prefill all-reduces move megabytes per layer.
 */
export function sumByHalvingTree(
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
  treeInto(target, views, 0, views.length);
}

/** target = tree(lo, hi) over views (f32 adds are commutative, so a + b vs b + a is moot). */
function treeInto(target: Float32Array, views: Float32Array[], lo: number, hi: number): void {
  if (hi - lo === 1) {
    target.set(views[lo]);
    return;
  }
  const mid = lo + Math.floor((hi - lo) / 2);
  treeInto(target, views, lo, mid);
  if (hi - mid === 1) {
    kernels.addInPlace(target, views[mid]);
    return;
  }
  const right = new Float32Array(target.length);
  treeInto(right, views, mid, hi);
  kernels.addInPlace(target, right);
}
