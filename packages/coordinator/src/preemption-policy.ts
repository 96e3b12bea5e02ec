/**
 * How a preempted sequence gives up its device blocks: recompute (drop its KV, compute it
 * again on readmission) or swap (copy its KV to the host tier and back on readmission).
 */
export type PreemptionMode = 'recompute' | 'swap' | 'auto';

/** Rates and sizes the 'auto' choice compares; times in seconds. */
export interface SwapCostModel {
  /** Model parameters; a token's forward pass is ~2 FLOPs per parameter. */
  numParams: number;
  /** Bytes of KV per token over all layers, K and V, as the host tier stores it. */
  kvBytesPerToken: number;
  /** Device compute rate for recompute, FLOP/s. */
  computeFlopsPerSecond: number;
  /** Host <-> device copy bandwidth, bytes/s. */
  hostCopyBytesPerSecond: number;
  /** Fixed cost of one copy (message, setup), seconds; makes short sequences recompute. */
  swapLatencySeconds: number;
}

/** A 2-core AVX2 CPU running the f32 kernels: ~150 GFLOP/s; memcpy-class host copies ~5 GB/s. */
export const DEFAULT_COMPUTE_FLOPS_PER_SECOND = 150e9;
export const DEFAULT_HOST_COPY_BYTES_PER_SECOND = 5e9;
/** One message round trip plus copy setup, per direction. */
export const DEFAULT_SWAP_LATENCY_SECONDS = 50e-6;

/**
 * Seconds to compute `numTokens` positions again. Linear in tokens: the weight FLOPs
 * dominate at the lengths preemption sees; attention's quadratic term is ignored, which
 * only understates recompute (so errs toward recompute, the stateless choice).
 */
export function recomputeSeconds(model: SwapCostModel, numTokens: number): number {
  return (numTokens * 2 * model.numParams) / model.computeFlopsPerSecond;
}

/** Seconds to copy `numTokens` positions of KV to the host and back (two copies). */
export function swapSeconds(model: SwapCostModel, numTokens: number): number {
  return 2 * (model.swapLatencySeconds + (numTokens * model.kvBytesPerToken) / model.hostCopyBytesPerSecond);
}

/**
 * Whether a preempted sequence holding `numTokens` computed positions should be swapped out:
 * never in 'recompute' mode or without host room; always (with room) in 'swap' mode; in
 * 'auto' when the copies are cheaper than the recompute.
 */
export function shouldSwap(
  mode: PreemptionMode,
  model: SwapCostModel | null,
  numTokens: number,
  hasHostRoom: boolean,
): boolean {
  if (mode === 'recompute' || !hasHostRoom || numTokens < 1) return false;
  if (mode === 'swap') return true;
  if (!model) throw new Error("preemption mode 'auto' needs a swap cost model");
  return swapSeconds(model, numTokens) < recomputeSeconds(model, numTokens);
}
