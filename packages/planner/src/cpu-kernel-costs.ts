import type { ModelCosts } from './model-costs.ts';

/**
 * What `seesaw profile` measured of the CPU engine's kernels with every device worker busy at
 * once. A CPU core does one thing at a time, so a layer is the SUM of its parts (no overlap of
 * weight streaming, arithmetic and attention as on a GPU), and the matmul rate depends on the
 * number of rows: few rows stream the weights from memory, many rows are arithmetic-bound.
 */
export interface CpuKernelProfile {
  /** Row counts (tokens in a step), ascending. */
  matmulRows: number[];
  /** Per row count: matmul seconds / (rows x weight parameters), bf16 weights. */
  matmulSecondsPerRowParam: number[];
  /** Norms, residual adds, SiLU, RoPE, KV cache writes: seconds per element written. */
  elementwiseSecondsPerElement: number;
  /** Attention FLOP/s (4 x heads x headDim per query-key pair) with one query per sequence (decode). */
  decodeAttentionFlopsPerSecond: number;
  /** The same with many queries per sequence (prefill chunks). */
  prefillAttentionFlopsPerSecond: number;
  /** Picking a token from one logit row (argmax and temperature sampling), seconds per logit. */
  sampleSecondsPerLogit?: number;
  /**
   * The same kernels with only ONE device worker busy: the rates a pipeline stage gets while
   * the other stages idle (on this machine's cores two busy workers slow each other).
   */
  alone?: CpuKernelProfile;
}

/**
 * Matmul seconds per (row x parameter) at `rows`, interpolated linearly in log(rows) between
 * measured row counts; beyond the last one the per-row cost stays (arithmetic-bound), below
 * the first the whole matmul costs what the first did (weight streaming).
 */
export function matmulSecondsPerRowParam(profile: CpuKernelProfile, rows: number): number {
  const { matmulRows: xs, matmulSecondsPerRowParam: ys } = profile;
  if (rows <= xs[0]) return (ys[0] * xs[0]) / Math.max(rows, 1e-9);
  const last = xs.length - 1;
  if (rows >= xs[last]) return ys[last];
  let i = 0;
  while (xs[i + 1] < rows) i++;
  const t = (Math.log(rows) - Math.log(xs[i])) / (Math.log(xs[i + 1]) - Math.log(xs[i]));
  return ys[i] + t * (ys[i + 1] - ys[i]);
}

/** Seconds of a matmul of `rows` rows against `params` weight parameters. */
export function matmulSeconds(profile: CpuKernelProfile, rows: number, params: number): number {
  return rows <= 0 ? 0 : rows * params * matmulSecondsPerRowParam(profile, rows);
}

/**
 * One decoder layer on one TP rank of `tp` on CPU (all-reduces excluded): the four projections
 * and the MLP at the measured rate for this many rows, the elementwise kernels, and attention
 * (decode pairs and prefill pairs at their own measured rates).
 */
export function cpuLayerComputeSeconds(
  profile: CpuKernelProfile,
  costs: ModelCosts,
  tp: number,
  numTokens: number,
  decodePairs: number,
  prefillPairs: number,
): number {
  const { hiddenSize: h, intermediateSize, numHeads, numKvHeads, headDim: d } = costs.config;
  // The two norm vectors are elementwise work, not matmul weights.
  const linear = matmulSeconds(profile, numTokens, (costs.layerParams - 2 * h) / tp);
  // Written per token: 2 norms and 2 residual adds of [H], SiLU of [I/tp], RoPE of q and k, K/V into the cache.
  const elementsPerToken = 4 * h + (intermediateSize + (numHeads + 3 * numKvHeads) * d) / tp;
  const elementwise = numTokens * elementsPerToken * profile.elementwiseSecondsPerElement;
  const flopsPerPair = (4 * numHeads * d) / tp;
  const attention =
    (flopsPerPair * decodePairs) / profile.decodeAttentionFlopsPerSecond +
    (flopsPerPair * prefillPairs) / profile.prefillAttentionFlopsPerSecond;
  return linear + elementwise + attention;
}
