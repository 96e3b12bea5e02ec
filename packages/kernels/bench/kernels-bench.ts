// Kernel benchmark: machine ceilings (FMA peak, streaming read bandwidth) and the kernels
// measured against them, all in one run. Medians of a few repetitions.
// Run from the repository root: pnpm bench:kernels
import {
  allocateKvCache,
  f32ToBf16,
  type KvDType,
  type MatmulPath,
  matmul,
  matmulOnPath,
  matmulPaths,
  pagedAttention,
  probes,
  setNumThreads,
  type Weight,
  type WeightDType,
} from '../src/index.ts';
import { benchQuantized } from './quantized-bench.ts';

const threadCounts = [1, 2];

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median seconds of fn over reps runs after one warm-up. */
function timeIt(fn: () => void, reps: number): number {
  fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    fn();
    times.push((performance.now() - t) / 1000);
  }
  return median(times);
}

function fill(a: Float32Array, seed: number): Float32Array {
  let s = seed;
  for (let i = 0; i < a.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

function makeWeight(dtype: WeightDType, rows: number, cols: number, seed: number): Weight {
  const values = fill(new Float32Array(rows * cols), seed);
  if (dtype === 'f32') return { dtype, rows, cols, data: values };
  const data = new Uint16Array(rows * cols);
  f32ToBf16(values, data);
  return { dtype, rows, cols, data };
}

const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(0)}%`;

const fmaPeak = new Map<number, number>();
const wideFmaPeak = new Map<number, number>();
const readBw = new Map<number, number>();
const paths = matmulPaths();

function measureCeilings(): void {
  const buffer = fill(new Float32Array((512 * 1024 * 1024) / 4), 1);
  console.log(`matmul paths: ${paths.supported.join(', ')} (chosen: ${paths.chosen})`);
  for (const t of threadCounts) {
    setNumThreads(t);
    fmaPeak.set(t, median([0, 1, 2].map(() => probes.fmaPeakGflops(100_000_000))));
    if (paths.supported.includes('avx512')) {
      wideFmaPeak.set(t, median([0, 1, 2].map(() => probes.fmaPeakGflops(100_000_000, 'avx512'))));
    }
    readBw.set(t, buffer.byteLength / median([0, 1, 2].map(() => probes.readSeconds(buffer))) / 1e9);
    const wide = wideFmaPeak.has(t) ? `, AVX-512 FMA peak ${wideFmaPeak.get(t)!.toFixed(1)} GFLOP/s` : '';
    console.log(
      `ceiling ${t} thread(s): AVX2 FMA peak ${fmaPeak.get(t)!.toFixed(1)} GFLOP/s${wide}, ` +
        `streaming read (512 MiB sum) ${readBw.get(t)!.toFixed(1)} GB/s`,
    );
  }
}

/** The FMA peak of the registers a matmul path uses. */
function peakFor(path: MatmulPath, threads: number): number {
  return (path === 'avx512' ? wideFmaPeak : fmaPeak).get(threads)!;
}

/** Many-row matmul (prefill-like), on every matmul path this CPU runs (same bits, see
 *  matmul-invariance.test.ts), and with the 8 leaves of a row-parallel weight. */
function benchManyRows(): void {
  const [m, n, k] = [256, 4096, 4096];
  const x = fill(new Float32Array(m * k), 2);
  const out = new Float32Array(m * n);
  for (const dtype of ['f32', 'bf16'] as WeightDType[]) {
    for (const leaves of [1, 8]) {
      const w = { ...makeWeight(dtype, n, k, 3), leaves };
      for (const path of paths.supported) {
        for (const t of threadCounts) {
          setNumThreads(t);
          const s = timeIt(() => matmulOnPath(path, out, x, m, w), 5);
          const gflops = (2 * m * n * k) / s / 1e9;
          console.log(
            `matmul ${m}x${k}x${n} ${dtype.padEnd(4)} leaves ${leaves} ${path.padEnd(6)} ${t}T: ` +
              `${(s * 1e3).toFixed(1)} ms, ${gflops.toFixed(1)} GFLOP/s = ${pct(gflops, peakFor(path, t))} of ` +
              `${t}T ${path} FMA peak`,
          );
        }
      }
    }
  }
}

/** Few-row weight streaming (decode-like). Several weight copies, more than the L3 cache
 *  together, are used in turn so each call reads its weights from memory. */
function benchStreaming(): void {
  for (const [n, k] of [
    [4096, 4096],
    [11008, 4096],
  ]) {
    for (const dtype of ['bf16', 'f32'] as WeightDType[]) {
      const bytes = n * k * (dtype === 'f32' ? 4 : 2);
      const copies = Math.max(2, Math.ceil((256 * 1024 * 1024) / bytes));
      const weights = Array.from({ length: copies }, (_, i) => makeWeight(dtype, n, k, 10 + i));
      for (const m of [1, 8, 32]) {
        const x = fill(new Float32Array(m * k), 4);
        const out = new Float32Array(m * n);
        for (const t of threadCounts) {
          setNumThreads(t);
          let next = 0;
          const s = timeIt(() => matmul(out, x, m, weights[next++ % copies]), 3 * copies);
          const gbs = bytes / s / 1e9;
          const gflops = (2 * m * n * k) / s / 1e9;
          console.log(
            `stream m=${String(m).padStart(2)} ${n}x${k} ${dtype.padEnd(4)} ${t}T: ${(s * 1e3).toFixed(2)} ms, ` +
              `weights ${gbs.toFixed(1)} GB/s = ${pct(gbs, readBw.get(t)!)} of read bw, ${gflops.toFixed(1)} GFLOP/s`,
          );
        }
      }
    }
  }
}

/** Attention decode: 32 sequences x 1024 context, 32 heads over 8 KV heads, head size 128, on an
 *  f32 and on a bf16 KV cache (half the bytes to stream). */
function benchAttentionDecode(dtype: KvDType): void {
  const [numSeqs, ctx, numHeads, numKvHeads, headDim, blockSize] = [32, 1024, 32, 8, 128, 16];
  const blocksPerSeq = ctx / blockSize;
  const numBlocks = numSeqs * blocksPerSeq;
  const layout = { numKvHeads, headDim, blockSize, dtype };
  const values = fill(new Float32Array(numBlocks * numKvHeads * blockSize * headDim), 5);
  const kCache = allocateKvCache(dtype, values.length);
  const vCache = allocateKvCache(dtype, values.length);
  if (kCache instanceof Float32Array && vCache instanceof Float32Array) {
    kCache.set(values);
    vCache.set(fill(new Float32Array(values.length), 6));
  } else {
    f32ToBf16(values, kCache as Uint16Array);
    f32ToBf16(fill(new Float32Array(values.length), 6), vCache as Uint16Array);
  }
  const blockTables = new Int32Array(numBlocks);
  for (let i = 0; i < numBlocks; i++) blockTables[i] = (i * 7919) % numBlocks; // scattered blocks
  const batch = {
    queryStart: Int32Array.from({ length: numSeqs + 1 }, (_, i) => i),
    contextLens: new Int32Array(numSeqs).fill(ctx),
    blockTables,
    maxBlocksPerSeq: blocksPerSeq,
  };
  const q = fill(new Float32Array(numSeqs * numHeads * headDim), 7);
  const out = new Float32Array(q.length);
  const kvBytes = 2 * kCache.byteLength;
  for (const t of threadCounts) {
    setNumThreads(t);
    const s = timeIt(
      () => pagedAttention(out, q, numHeads * headDim, kCache, vCache, batch, numHeads, layout, 0.088),
      5,
    );
    console.log(
      `attention decode ${numSeqs} seqs x ${ctx} ctx, ${numHeads}/${numKvHeads} heads, d=${headDim}, ${dtype} KV ${t}T: ` +
        `${(s * 1e3).toFixed(2)} ms per layer, KV ${(kvBytes / s / 1e9).toFixed(1)} GB/s = ` +
        `${pct(kvBytes / s / 1e9, readBw.get(t)!)} of read bw`,
    );
  }
}

measureCeilings();
benchManyRows();
benchStreaming();
benchAttentionDecode('f32');
benchAttentionDecode('bf16');
benchQuantized({ fmaPeak, readBw }, threadCounts);
setNumThreads(1);
