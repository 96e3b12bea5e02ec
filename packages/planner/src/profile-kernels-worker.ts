// Worker of `seesaw profile`: one per device worker of the engine, all running the same kernel
// timings at once (a shared barrier starts each timing together), so every figure includes the
// contention between device workers for cores, caches and memory bandwidth that a real step
// sees. Posts a KernelTimings object (seconds).
import { parentPort, workerData } from 'node:worker_threads';
import {
  addInPlace,
  argmaxRows,
  matmul,
  pagedAttention,
  rmsNorm,
  rope,
  sampleRow,
  setNumThreads,
  siluMul,
} from '@seesaw/kernels';
import { bf16Weight, filled, median } from './profile-inputs.ts';
import {
  ATTENTION_SHAPE,
  DECODE_KV_RING_BYTES,
  decodeKvRingLayers,
  ELEMENTWISE_SHAPE,
  type KernelTimings,
  type KernelWorkerInput,
  MATMUL_SHAPE,
  QUICK_DECODE_KV_RING_BYTES,
  SAMPLE_VOCAB,
} from './profile-kernels-shapes.ts';

const { threads, quick, barrier, numWorkers, rowCounts } = workerData as KernelWorkerInput;
setNumThreads(threads);
const barrierView = new Int32Array(barrier);
let generation = 0;

/** Blocks until every worker arrived; slot 0 counts arrivals, slot 1 is the generation. */
function arriveAndWait(): void {
  generation++;
  if (Atomics.add(barrierView, 0, 1) + 1 === numWorkers * generation) {
    Atomics.store(barrierView, 1, generation);
    Atomics.notify(barrierView, 1);
  } else {
    while (Atomics.load(barrierView, 1) < generation) Atomics.wait(barrierView, 1, generation - 1, 50);
  }
}

/** Median seconds of `fn` over reps, every rep started together on all workers. */
function timeTogether(fn: () => void, reps: number): number {
  arriveAndWait();
  fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    arriveAndWait();
    const start = performance.now();
    fn();
    times.push((performance.now() - start) / 1000);
  }
  return median(times);
}

/**
 * Seconds per (row x weight parameter) of a bf16 matmul for each row count. A ring of weights
 * larger than the caches is cycled, as a model's layers are, so small row counts pay the
 * weight streaming from memory and large ones the arithmetic.
 */
function matmulSecondsPerRowParam(): number[] {
  const { rows: n, cols: k } = MATMUL_SHAPE;
  const ringBytes = quick ? 16 * 1024 ** 2 : 64 * 1024 ** 2;
  const ring = Array.from({ length: Math.max(1, Math.round(ringBytes / (n * k * 2))) }, (_, i) =>
    bf16Weight(n, k, 11 + i),
  );
  const maxRows = Math.max(...rowCounts);
  const x = filled(maxRows * k, 2);
  const out = new Float32Array(maxRows * n);
  return rowCounts.map((m) => {
    // Large row counts are compute-bound: a few weights of the ring suffice.
    const weights = m >= 64 ? ring.slice(0, Math.max(1, Math.ceil(ring.length / 8))) : ring;
    const seconds = timeTogether(
      () => {
        for (const w of weights) matmul(out, x, m, w);
      },
      quick ? 2 : 5,
    );
    return seconds / (weights.length * m * n * k);
  });
}

/** Seconds per element of the elementwise kernels of a layer (norms, residual adds, SiLU, RoPE). */
function elementwiseSecondsPerElement(): number {
  const { tokens, hidden, intermediate, heads, headDim } = ELEMENTWISE_SHAPE;
  const x = filled(tokens * hidden, 3);
  const y = filled(tokens * hidden, 4);
  const norm = filled(hidden, 5);
  const out = new Float32Array(tokens * hidden);
  const gateUp = filled(tokens * 2 * intermediate, 6);
  const act = new Float32Array(tokens * intermediate);
  const qk = filled(tokens * heads * headDim, 7);
  const cos = filled(tokens * (headDim / 2), 8);
  const sin = filled(tokens * (headDim / 2), 9);
  const seconds = timeTogether(
    () => {
      rmsNorm(out, x, norm, 1e-5);
      addInPlace(out, y);
      siluMul(act, gateUp, tokens, intermediate);
      rope(qk, tokens, heads, headDim, heads * headDim, cos, sin);
    },
    quick ? 3 : 7,
  );
  // Elements produced: norm and add each write [T][H], SiLU [T][I], RoPE [T][heads * D].
  return seconds / (tokens * (2 * hidden + intermediate + heads * headDim));
}

/**
 * Attention FLOP/s (4 x heads x D per query-key pair) of decode (one query per sequence) and
 * prefill. Decode reads every cached key and value once per step, so it runs at the rate the KV
 * streams from memory: like a model's layers, it cycles a ring of per-layer caches larger than
 * the CPU's caches (DECODE_KV_RING_BYTES). One cache read again and again stays cache-resident
 * and ran 1.5x faster than the same step over 12 layers of a real model's KV. A prefill chunk
 * reuses each key for many queries (arithmetic-bound), so one cache suffices.
 */
function attentionFlopsPerSecond(): { decode: number; prefill: number } {
  const { heads, kvHeads, headDim, blockSize } = ATTENTION_SHAPE;
  const layout = { numKvHeads: kvHeads, headDim, blockSize };
  const context = quick ? 128 : 256;
  const numSeqs = quick ? 8 : 32;
  const blocksPerSeq = context / blockSize;
  const cacheLength = numSeqs * blocksPerSeq * kvHeads * blockSize * headDim;
  const ringBytes = quick ? QUICK_DECODE_KV_RING_BYTES : DECODE_KV_RING_BYTES;
  const numLayers = decodeKvRingLayers(2 * cacheLength * Float32Array.BYTES_PER_ELEMENT, ringBytes);
  const caches = Array.from({ length: numLayers }, (_, layer) => ({
    k: filled(cacheLength, 12 + 2 * layer),
    v: filled(cacheLength, 13 + 2 * layer),
  }));
  const time = (queriesPerSeq: number, layers: typeof caches): { seconds: number; pairs: number } => {
    const q = filled(numSeqs * queriesPerSeq * heads * headDim, 14);
    const out = new Float32Array(q.length);
    const batch = {
      queryStart: Int32Array.from({ length: numSeqs + 1 }, (_, i) => i * queriesPerSeq),
      contextLens: new Int32Array(numSeqs).fill(context),
      blockTables: Int32Array.from({ length: numSeqs * blocksPerSeq }, (_, i) => i),
      maxBlocksPerSeq: blocksPerSeq,
    };
    const seconds = timeTogether(
      () => {
        for (const { k, v } of layers)
          pagedAttention(out, q, heads * headDim, k, v, batch, heads, layout, 0.125);
      },
      quick ? 3 : 5,
    );
    // Causal: the i-th of the last n queries sees context - n + i + 1 keys.
    let pairs = 0;
    for (let i = 0; i < queriesPerSeq; i++) pairs += context - queriesPerSeq + i + 1;
    return { seconds, pairs: pairs * numSeqs * layers.length };
  };
  const rate = ({ seconds, pairs }: { seconds: number; pairs: number }) =>
    (4 * heads * headDim * pairs) / seconds;
  return { decode: rate(time(1, caches)), prefill: rate(time(context, caches.slice(0, 1))) };
}

/** Seconds per logit of picking a token from a row: argmax plus temperature-1 sampling (bench's settings). */
function sampleSecondsPerLogit(): number {
  const rows = 4;
  const logits = filled(rows * SAMPLE_VOCAB, 10).map((v) => 6 * v);
  const work = new Float32Array(logits.length);
  const seconds = timeTogether(
    () => {
      work.set(logits);
      argmaxRows(work, rows, SAMPLE_VOCAB);
      for (let r = 0; r < rows; r++)
        sampleRow(work.subarray(r * SAMPLE_VOCAB, (r + 1) * SAMPLE_VOCAB), 1, 0, 1, 0.5);
    },
    quick ? 3 : 9,
  );
  return seconds / (rows * SAMPLE_VOCAB);
}

const timings: KernelTimings = {
  matmulSecondsPerRowParam: matmulSecondsPerRowParam(),
  elementwiseSecondsPerElement: elementwiseSecondsPerElement(),
  ...(() => {
    const { decode, prefill } = attentionFlopsPerSecond();
    return { decodeAttentionFlopsPerSecond: decode, prefillAttentionFlopsPerSecond: prefill };
  })(),
  sampleSecondsPerLogit: sampleSecondsPerLogit(),
};
parentPort?.postMessage(timings);
