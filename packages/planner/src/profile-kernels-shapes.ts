/** Shapes and messages shared by `seesaw profile` and its concurrent kernel workers. */

/** Weight of the matmul curve, [rows][cols] bf16: a typical TP-split projection of a small model. */
export const MATMUL_SHAPE = { rows: 2048, cols: 1024 } as const;
/** Row counts (tokens in a step) the matmul curve is measured at. */
export const MATMUL_ROW_COUNTS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512] as const;
export const QUICK_MATMUL_ROW_COUNTS = [1, 8, 64, 256] as const;
export const ELEMENTWISE_SHAPE = {
  tokens: 256,
  hidden: 1024,
  intermediate: 1024,
  heads: 12,
  headDim: 64,
} as const;
/** One device's heads under TP 2 of a 12-head, 4-KV-head model; f32 paged KV as the CPU engine keeps it. */
export const ATTENTION_SHAPE = { heads: 6, kvHeads: 2, headDim: 64, blockSize: 16 } as const;
/**
 * KV bytes (K and V, all layers) a decode-attention timing cycles through: more than a CPU's
 * last-level cache, as a decode step's KV over a model's layers is (small, 32 sequences x 160
 * tokens: 120 MiB of f32 KV per step).
 */
export const DECODE_KV_RING_BYTES = 64 * 1024 ** 2;
export const QUICK_DECODE_KV_RING_BYTES = 16 * 1024 ** 2;

/** Layers of `layerKvBytes` (K and V) a decode timing cycles: the fewest that cover `ringBytes`. */
export function decodeKvRingLayers(layerKvBytes: number, ringBytes: number): number {
  if (!(layerKvBytes > 0)) throw new RangeError(`a layer's KV bytes must be positive, got ${layerKvBytes}`);
  return Math.max(1, Math.ceil(ringBytes / layerKvBytes));
}
/** Vocabulary of the sampling timing (Llama-2 sized). */
export const SAMPLE_VOCAB = 32000;

export interface KernelWorkerInput {
  threads: number;
  quick: boolean;
  /** SharedArrayBuffer of 2 Int32 (arrivals, generation) for the start barrier. */
  barrier: SharedArrayBuffer;
  numWorkers: number;
  rowCounts: readonly number[];
}

/** What one kernel worker measured while every other worker ran the same kernels. */
export interface KernelTimings {
  /** Per entry of rowCounts: matmul seconds / (rows x weight parameters). */
  matmulSecondsPerRowParam: number[];
  elementwiseSecondsPerElement: number;
  decodeAttentionFlopsPerSecond: number;
  prefillAttentionFlopsPerSecond: number;
  sampleSecondsPerLogit: number;
}
