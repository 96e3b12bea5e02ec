/**
 * How many leaves the K reduction of a row-parallel weight (o_proj, down_proj) has on a shard
 * (docs/determinism.md). One device reduces K as 8 equal leaves combined by the halving tree;
 * each of T tensor-parallel ranks (T dividing 8) holds K / T columns, i.e. 8 / T of those leaves,
 * and the all-reduce combines the rank partials by the same tree, so T1/T2/T4/T8 give the same
 * bits. Where that cannot hold (T not dividing 8, or leaves that would not divide the columns)
 * the weight keeps one leaf: still batch-invariant, not bit-equal across TP degrees.
 */
export const SINGLE_DEVICE_LEAVES = 8;

export function rowParallelLeaves(tp: number, columns: number): number {
  if (SINGLE_DEVICE_LEAVES % tp !== 0) return 1;
  const leaves = SINGLE_DEVICE_LEAVES / tp;
  return columns % leaves === 0 ? leaves : 1;
}
