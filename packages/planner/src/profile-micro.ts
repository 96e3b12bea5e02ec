/**
 * The single-thread kernel figures `seesaw profile` measures on the calling thread: bf16 matmul
 * (many rows: FLOP/s; one row: weight bytes/s), paged attention, one sampled row and a memory
 * copy, each the median of a few timed repetitions after a warm-up call (timeSeconds).
 */
import { matmul, pagedAttention, sampleRow } from '@seesaw/kernels';
import type { LinkProfile } from './hardware.ts';
import { bf16Weight, filled, timeSeconds } from './profile-inputs.ts';

/** Many-row bf16 matmul (prefill-like): FLOP/s. Single-row (decode-like): weight bytes/s. */
export function measureMatmul(quick: boolean): { flopsPerSecond: number; weightBytesPerSecond: number } {
  const [m, n, k] = quick ? [64, 1024, 1024] : [256, 2048, 2048];
  const w = bf16Weight(n, k, 3);
  const x = filled(m * k, 2);
  const out = new Float32Array(m * n);
  const many = timeSeconds(() => matmul(out, x, m, w), quick ? 2 : 4);
  const big = quick ? bf16Weight(2048, 2048, 4) : bf16Weight(4096, 8192, 4);
  const row = filled(big.cols, 5);
  const rowOut = new Float32Array(big.rows);
  const single = timeSeconds(() => matmul(rowOut, row, 1, big), quick ? 3 : 7);
  return { flopsPerSecond: (2 * m * n * k) / many, weightBytesPerSecond: (big.rows * big.cols * 2) / single };
}

/** Paged attention over a long context (prefill-like queries): FLOP/s (QK^T and PV). */
export function measureAttention(quick: boolean): number {
  const numHeads = 8;
  const numKvHeads = 4;
  const headDim = 64;
  const blockSize = 16;
  const context = quick ? 256 : 1024;
  const numQueries = quick ? 64 : 256;
  const numBlocks = context / blockSize;
  const kCache = filled(numBlocks * numKvHeads * blockSize * headDim, 6);
  const vCache = filled(numBlocks * numKvHeads * blockSize * headDim, 7);
  const q = filled(numQueries * numHeads * headDim, 8);
  const out = new Float32Array(numQueries * numHeads * headDim);
  const batch = {
    queryStart: Int32Array.from([0, numQueries]),
    contextLens: Int32Array.from([context]),
    blockTables: Int32Array.from({ length: numBlocks }, (_, i) => i),
    maxBlocksPerSeq: numBlocks,
  };
  const layout = { numKvHeads, headDim, blockSize };
  const seconds = timeSeconds(
    () =>
      pagedAttention(
        out,
        q,
        numHeads * headDim,
        kCache,
        vCache,
        batch,
        numHeads,
        layout,
        1 / Math.sqrt(headDim),
      ),
    3,
  );
  // Causal: query i (of the last numQueries positions) sees context - numQueries + i + 1 keys.
  let pairs = 0;
  for (let i = 0; i < numQueries; i++) pairs += context - numQueries + i + 1;
  return (4 * numHeads * headDim * pairs) / seconds;
}

/**
 * Seconds per logit of sampling one row with `seesaw bench`'s settings (temperature 1, no
 * top-k/top-p cut) over a Llama-2-sized vocabulary, with the device's own sampling kernel.
 */
export function measureSampling(): number {
  const vocab = 32000;
  const logits = filled(vocab, 10).map((x) => 6 * x);
  const row = new Float32Array(vocab);
  const seconds = timeSeconds(() => {
    row.set(logits);
    sampleRow(row, 1, 0, 1, 0.5);
  }, 9);
  return seconds / vocab;
}

/** Copy bandwidth of this process's memory (the host kv-store's copies in and out). */
export function measureCopy(quick: boolean): LinkProfile {
  const bytes = quick ? 16 * 1024 * 1024 : 128 * 1024 * 1024;
  const src = filled(bytes / 4, 9);
  const dst = new Float32Array(bytes / 4);
  const seconds = timeSeconds(() => dst.set(src), 3);
  const small = timeSeconds(() => dst.set(src.subarray(0, 256)), 50);
  return { bytesPerSecond: bytes / seconds, latencySeconds: small };
}
