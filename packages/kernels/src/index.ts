// Public API of @seesaw/kernels: native CPU kernels (AVX2 or AVX-512, chosen at run time;
// argument-checked in the addon) and the float64 reference implementations they are tested against.
import { type KvCacheArray, type KvLayout, kvDtypeCodes } from './kv-cache.ts';
import { type MatmulPath, native } from './native-addon.ts';
import { packedQuantizedMatmul, type QuantWeightType, quantizedMatmul } from './quantized.ts';

export {
  allocateKvCache,
  KV_DTYPES,
  type KvCacheArray,
  type KvDType,
  type KvLayout,
  kvDtypeBytes,
} from './kv-cache.ts';
export type { MatmulPath } from './native-addon.ts';
export {
  type PackedQuantizedWeight,
  packedQuantizedMatmul,
  packQuantizedWeight,
  QUANT_BLOCK_BYTES,
  QUANT_KERNEL_PATHS,
  type QuantizedWeight,
  type QuantKernelPath,
  type QuantWeightType,
  quantizedMatmul,
  quantKernelPaths,
  unpackQuantizedWeight,
} from './quantized.ts';
export * as reference from './reference/index.ts';
export { argmaxRows, type RowSamplingSettings, sampleRow, sampleRows } from './sampling.ts';
export { weightToFloat64 } from './weight-to-float64.ts';

/** q8_0_packed / q4_0_packed: Q8_0 / Q4_0 blocks packed for the kernels (packQuantizedWeight). */
export type WeightDType = 'f32' | 'f16' | 'bf16' | QuantWeightType | 'q8_0_packed' | 'q4_0_packed';
/** Weight matrix W, shape [rows = N output features][cols = K input features], row-major, in
 *  its storage dtype; f16/bf16 data are raw 16-bit patterns (Uint16Array), q8_0/q4_0 data ggml
 *  blocks of 32 (Uint8Array, see quantized.ts; matmul only). Never converted to f32 in memory:
 *  conversion happens in registers inside kernels. */
export interface Weight {
  dtype: WeightDType;
  rows: number;
  cols: number;
  data: Float32Array | Uint16Array | Uint8Array;
  /**
   * How many equal leaves the K reduction has (docs/determinism.md), 1 when absent. A
   * row-parallel weight (o_proj, down_proj) has 8 on one device and 8 / T on each of T
   * tensor-parallel ranks, so that the all-reduce of the rank partials completes the single
   * device's halving tree bit for bit. Quantized weights ignore it (their tree is over blocks).
   */
  leaves?: number;
}

/** A batch of sequences for attention: queries of sequence s are rows queryStart[s]..queryStart[s+1]-1;
 *  contextLens[s] = tokens of s in the cache INCLUDING this step's; query i of s has position
 *  contextLens[s] - numQueries(s) + i and attends causally to key positions 0..that position.
 *  blockTables: [numSeqs][maxBlocksPerSeq] int32 (unused entries ignored). */
export interface AttentionBatch {
  queryStart: Int32Array;
  contextLens: Int32Array;
  blockTables: Int32Array;
  maxBlocksPerSeq: number;
}

// Codes shared with native/args.h (weightArg).
const dtypeCodes: Partial<Record<WeightDType, number>> = { f32: 0, f16: 1, bf16: 2 };

function dtypeCode(w: Weight): number {
  const code = dtypeCodes[w.dtype];
  if (code === undefined) throw new TypeError(`unknown weight dtype ${String(w.dtype)}`);
  return code;
}

/** Thread pool of the CALLING JS thread (each worker_thread gets its own persistent pool; the
 *  caller thread works as worker 0). Default 1 until set. */
export function setNumThreads(n: number): void {
  native.setNumThreads(n);
}
export function getNumThreads(): number {
  return native.getNumThreads();
}

/** out[m][N] = x[m][K] · Wᵀ (+ bias[N]). x, out row-major f32, contiguous. */
export function matmul(out: Float32Array, x: Float32Array, m: number, w: Weight, bias?: Float32Array): void {
  if (w.dtype === 'q8_0' || w.dtype === 'q4_0' || w.dtype === 'q8_0_packed' || w.dtype === 'q4_0_packed') {
    const data = w.data as Uint8Array;
    if (w.dtype === 'q8_0_packed' || w.dtype === 'q4_0_packed') {
      const type = w.dtype === 'q8_0_packed' ? 'q8_0' : 'q4_0';
      packedQuantizedMatmul(out, x, m, { type, rows: w.rows, cols: w.cols, data });
    } else {
      quantizedMatmul(out, x, m, { type: w.dtype, rows: w.rows, cols: w.cols, data });
    }
    if (bias !== undefined)
      for (let r = 0; r < m; r++) native.addInPlace(out.subarray(r * w.rows, (r + 1) * w.rows), bias);
    return;
  }
  denseMatmul(out, x, m, w, bias);
}

/** The f32/f16/bf16 matmul, on `path` or (absent) the CPU's fastest. */
function denseMatmul(
  out: Float32Array,
  x: Float32Array,
  m: number,
  w: Weight,
  bias?: Float32Array,
  path?: MatmulPath,
) {
  const data = w.data as Float32Array | Uint16Array;
  native.matmul(out, x, m, dtypeCode(w), w.rows, w.cols, data, bias, w.leaves, path);
}

/**
 * The f32/f16/bf16 matmul on a named instruction-set path (tests and benchmarks compare the
 * paths; the engine uses `matmul`, which takes the CPU's fastest).
 */
export function matmulOnPath(
  path: MatmulPath,
  out: Float32Array,
  x: Float32Array,
  m: number,
  w: Weight,
  bias?: Float32Array,
): void {
  if (w.dtype !== 'f32' && w.dtype !== 'f16' && w.dtype !== 'bf16') {
    throw new RangeError(`matmulOnPath takes f32/f16/bf16 weights, got ${w.dtype}`);
  }
  denseMatmul(out, x, m, w, bias, path);
}

/** The matmul paths this CPU runs, and the one `matmul` uses. */
export function matmulPaths(): { supported: MatmulPath[]; chosen: MatmulPath } {
  return native.matmulPaths();
}

/** out[r][:] = x[r][:] / sqrt(mean(x[r]^2) + eps) * weight; rows = x.length / weight.length; out may alias x. */
export function rmsNorm(out: Float32Array, x: Float32Array, weight: Float32Array, eps: number): void {
  native.rmsNorm(out, x, weight, eps);
}

/** x[i] += y[i] */
export function addInPlace(x: Float32Array, y: Float32Array): void {
  native.addInPlace(x, y);
}

/**
 * Copies `numRows` runs of `runBytes`: row r from `src` at srcStart + r * srcRowBytes to `dest`
 * at destStart + r * destRowBytes, in one native call (a column slice of a matrix, row by row).
 * Bounds are checked; overlapping views of one buffer are allowed.
 */
export function copyRows(
  src: Uint8Array,
  srcStart: number,
  srcRowBytes: number,
  dest: Uint8Array,
  destStart: number,
  destRowBytes: number,
  runBytes: number,
  numRows: number,
): void {
  native.copyRows(src, srcStart, srcRowBytes, dest, destStart, destRowBytes, runBytes, numRows);
}

/**
 * Maps the pages under bytes[start, end) for writing without changing a byte (Linux's
 * madvise(MADV_POPULATE_WRITE), whole pages, safe while other threads use other bytes of them).
 * False where the kernel cannot; the caller then touches the pages itself. Why not from JS:
 * populate_pages.cc.
 */
export function populatePages(bytes: Uint8Array, start: number, end: number): boolean {
  return native.populatePages(bytes, start, end);
}

/** Rotate-half RoPE (Hugging Face Llama convention: pairs (i, i + headDim/2)), in place.
 *  x: token t, head h starts at x[t*rowStride + h*headDim]; cos/sin: [numTokens][headDim/2]. */
export function rope(
  x: Float32Array,
  numTokens: number,
  numHeads: number,
  headDim: number,
  rowStride: number,
  cos: Float32Array,
  sin: Float32Array,
): void {
  native.rope(x, numTokens, numHeads, headDim, rowStride, cos, sin);
}

/** out[r][j] = silu(gateUp[r][j]) * gateUp[r][I + j]; gateUp is [rows][2I], out is [rows][I]. */
export function siluMul(out: Float32Array, gateUp: Float32Array, rows: number, intermediate: number): void {
  native.siluMul(out, gateUp, rows, intermediate);
}

/** out[t][:] = f32(table row ids[t]); throws RangeError on an id outside [0, vocab). */
export function embed(out: Float32Array, table: Weight, ids: Int32Array): void {
  native.embed(out, dtypeCode(table), table.rows, table.cols, table.data as Float32Array | Uint16Array, ids);
}

/** Writes token t's K/V (token t head h at k[t*rowStride + h*headDim]) into slot slots[t]. */
export function writeKv(
  kCache: KvCacheArray,
  vCache: KvCacheArray,
  k: Float32Array,
  v: Float32Array,
  rowStride: number,
  slots: Int32Array,
  layout: KvLayout,
): void {
  native.writeKv(
    kCache,
    vCache,
    k,
    v,
    rowStride,
    slots,
    layout.numKvHeads,
    layout.headDim,
    layout.blockSize,
    kvDtypeCodes[layout.dtype ?? 'f32'],
  );
}

/** out[t][h*headDim..] = softmax(scale * q_h · K_g) · V_g, g = h / (numHeads/numKvHeads) (GQA). */
export function pagedAttention(
  out: Float32Array,
  q: Float32Array,
  qRowStride: number,
  kCache: KvCacheArray,
  vCache: KvCacheArray,
  batch: AttentionBatch,
  numHeads: number,
  layout: KvLayout,
  scale: number,
): void {
  native.pagedAttention(
    out,
    q,
    qRowStride,
    kCache,
    vCache,
    batch.queryStart,
    batch.contextLens,
    batch.blockTables,
    batch.maxBlocksPerSeq,
    numHeads,
    layout.numKvHeads,
    layout.headDim,
    layout.blockSize,
    scale,
    kvDtypeCodes[layout.dtype ?? 'f32'],
  );
}

/** f32 -> bf16 bit patterns, round-to-nearest-even (NaN stays NaN). */
export function f32ToBf16(src: Float32Array, dst: Uint16Array): void {
  native.f32ToBf16(src, dst);
}
/** f32 -> IEEE half bit patterns, round-to-nearest-even (overflow to ±inf, subnormals kept). */
export function f32ToF16(src: Float32Array, dst: Uint16Array): void {
  native.f32ToF16(src, dst);
}

/** Machine ceilings for benchmarks, measured on the calling thread's pool. */
export const probes = {
  /**
   * Register-only FMA loop on every pool thread; GFLOP/s over all threads, on the registers of
   * the matmul `path` (avx2: 8 lanes; avx512: 16 lanes, only where the CPU has AVX-512).
   */
  fmaPeakGflops(iterations = 50_000_000, path: MatmulPath = 'avx2'): number {
    return native.measureFmaPeak(iterations, path === 'avx512');
  },
  /** Seconds to sum `buffer` with the pool (streaming read). */
  readSeconds(buffer: Float32Array): number {
    return native.measureReadSeconds(buffer);
  },
};
