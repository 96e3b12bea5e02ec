import type { KvLayout } from '@seesaw/kernels';
import { type GpuTensor, type GpuWeight, MAX_GROUPS_PER_DIM, need, WebGpuStream } from './webgpu-stream.ts';
import { MAX_HEAD_DIM, pagedAttentionSource, writeKvSource } from './wgsl-attention.ts';
import { GEMV_WORKGROUP, gemvSource } from './wgsl-gemv.ts';
import {
  addInPlaceSource,
  argmaxRowsSource,
  embedSource,
  MATMUL_TILE,
  matmulSource,
  matmulTiledSource,
  rmsNormSource,
  ropeSource,
  siluMulSource,
  tailWeightsSource,
  topKRowsSource,
} from './wgsl-sources.ts';

/** Shapes of one attention call over a step's qkv rows. */
export interface AttentionGeometry {
  tokens: number;
  numHeads: number;
  layout: KvLayout;
  maxBlocksPerSeq: number;
  rowStride: number;
  kOffset: number;
  vOffset: number;
  scale: number;
}

const WORKGROUP = 64;
/** The f32 bit pattern of -inf. */
const NEG_INF_BITS = 0xff800000;
/** Rows from which matmul uses the tiled kernel (a tile holds 16 rows: fewer leave it mostly idle). */
export const TILED_MATMUL_MIN_ROWS = 8;
/**
 * Rows up to which matmul uses the GEMV kernel on a hardware adapter (decode steps). Chosen by
 * reasoning, not yet measured on a GPU: up to 16 rows one workgroup serves them all (16
 * accumulators a thread) and reads each weight once per dispatch, while the tiled kernel's
 * 16-row tiles would be part empty; from 17 rows the tiled kernel's tiles fill up and it reuses
 * each staged weight across 16 rows too.
 */
export const GEMV_MAX_ROWS = 16;
/** The kernels matmul can run; all give the same bits. */
export type MatmulKernel = 'rows' | 'tiled' | 'gemv';

/**
 * The forward-pass kernels on one WebGPU device. Each call encodes one dispatch into the
 * stream's current command encoder; flush() submits them, so a whole step can be one submission.
 * Buffers are the caller's; arguments are checked here because WGSL has no bounds errors (reads
 * past the end are clamped silently, which would hide a wrong shape).
 */
export class WebGpuKernels extends WebGpuStream {
  /**
   * matmul('auto') runs the GEMV kernel up to gemvMaxRows rows (0: never), else the tiled kernel
   * from tiledMatmulMinRows rows (Infinity: never), else the one-thread-per-output kernel.
   */
  constructor(
    device: GPUDevice,
    private readonly tiledMatmulMinRows = TILED_MATMUL_MIN_ROWS,
    private readonly gemvMaxRows = GEMV_MAX_ROWS,
  ) {
    super(device);
  }

  /**
   * Kernels for a context: the tiled matmul and the GEMV only on a hardware adapter (on lavapipe
   * both measured slower than the one-thread-per-output kernel: see `pnpm bench:webgpu`).
   */
  static forContext(context: { device: GPUDevice; isSoftwareAdapter: boolean }): WebGpuKernels {
    return context.isSoftwareAdapter
      ? new WebGpuKernels(context.device, Infinity, 0)
      : new WebGpuKernels(context.device);
  }

  /**
   * out[m][N] = x[m][K] · Wᵀ (+ bias[N]). Up to gemvMaxRows rows (decode) the GEMV kernel runs,
   * from tiledMatmulMinRows rows on (prefill) the tiled one, between them the
   * one-thread-per-output one; all give the same bits, so `kernel` (for tests and the bench) only
   * picks the speed.
   */
  matmul(
    out: GpuTensor,
    x: GpuTensor,
    m: number,
    w: GpuWeight,
    bias?: GpuTensor,
    kernel: 'auto' | MatmulKernel = 'auto',
  ): void {
    need(x.length >= m * w.cols, `matmul x holds ${x.length} floats, needs ${m} x ${w.cols}`);
    need(out.length >= m * w.rows, `matmul out holds ${out.length} floats, needs ${m} x ${w.rows}`);
    if (bias) need(bias.length === w.rows, `matmul bias has ${bias.length} entries, needs ${w.rows}`);
    const buffers = [x, w.tensor, out, this.params([m, w.rows, w.cols, w.leaves])];
    if (bias) buffers.push(bias);
    const withBias = bias !== undefined;
    const chosen = kernel === 'auto' ? this.autoKernel(m) : kernel;
    if (chosen === 'gemv') {
      // One row block of up to GEMV_MAX_ROWS rows per workgroup, sized to m (a power of two).
      const rowsPerGroup = Math.min(GEMV_MAX_ROWS, 2 ** Math.ceil(Math.log2(Math.max(1, m))));
      const outputsPerGroup = GEMV_WORKGROUP / w.leaves;
      const groupsX = Math.ceil(w.rows / outputsPerGroup);
      const groupsY = Math.ceil(m / rowsPerGroup);
      need(
        groupsX <= MAX_GROUPS_PER_DIM && groupsY <= MAX_GROUPS_PER_DIM,
        `GEMV of ${m} x ${w.rows} outputs exceeds ${MAX_GROUPS_PER_DIM} workgroups per dimension`,
      );
      this.dispatch(gemvSource(w.dtype, withBias, rowsPerGroup), buffers, groupsX, groupsY);
    } else if (chosen === 'tiled') {
      const tiles = (n: number) => Math.ceil(n / MATMUL_TILE);
      need(
        tiles(m) <= MAX_GROUPS_PER_DIM,
        `matmul of ${m} rows exceeds ${MAX_GROUPS_PER_DIM} tiles per dispatch`,
      );
      this.dispatch(matmulTiledSource(w.dtype, withBias), buffers, tiles(w.rows), tiles(m));
    } else {
      need(m <= MAX_GROUPS_PER_DIM, `matmul of ${m} rows exceeds ${MAX_GROUPS_PER_DIM} per dispatch`);
      this.dispatch(matmulSource(w.dtype, withBias), buffers, groups(w.rows), m);
    }
  }

  /** The kernel matmul('auto') runs for m rows. */
  autoKernel(m: number): MatmulKernel {
    if (m <= this.gemvMaxRows) return 'gemv';
    return m >= this.tiledMatmulMinRows ? 'tiled' : 'rows';
  }

  rmsNorm(out: GpuTensor, x: GpuTensor, weight: GpuTensor, rows: number, eps: number): void {
    const cols = weight.length;
    need(out.buffer !== x.buffer, 'rmsNorm cannot write in place (one buffer bound read-only and writable)');
    need(x.length >= rows * cols && out.length >= rows * cols, `rmsNorm needs ${rows} x ${cols} floats`);
    const params = new Uint32Array([rows, cols, 0, 0]);
    new Float32Array(params.buffer)[2] = eps;
    this.dispatch(rmsNormSource, [x, weight, out, this.params(params)], rows, 1);
  }

  addInPlace(x: GpuTensor, y: GpuTensor, n = x.length): void {
    need(x.length >= n && y.length >= n, `addInPlace of ${n} floats on ${x.length} and ${y.length}`);
    const total = groups(n);
    const gx = Math.min(total, MAX_GROUPS_PER_DIM);
    this.dispatch(addInPlaceSource, [x, y, this.params([n, 0, 0, 0])], gx, Math.ceil(total / gx));
  }

  siluMul(out: GpuTensor, gateUp: GpuTensor, rows: number, intermediate: number): void {
    need(
      gateUp.length >= rows * 2 * intermediate,
      `siluMul gateUp needs ${rows} x ${2 * intermediate} floats`,
    );
    need(out.length >= rows * intermediate, `siluMul out needs ${rows} x ${intermediate} floats`);
    this.dispatch(
      siluMulSource,
      [gateUp, out, this.params([rows, intermediate, 0, 0])],
      groups(intermediate),
      rows,
    );
  }

  /** ids: an i32 tensor of tokens; the ids themselves are checked on the host before upload. */
  embed(out: GpuTensor, table: GpuWeight, ids: GpuTensor): void {
    const tokens = ids.length;
    need(out.length >= tokens * table.cols, `embed out needs ${tokens} x ${table.cols} floats`);
    const params = this.params([tokens, table.cols, table.rows, 0]);
    this.dispatch(embedSource(table.dtype), [ids, table.tensor, out, params], groups(table.cols), tokens);
  }

  /** In-place rotate-half RoPE; cos/sin are [tokens][headDim/2]. */
  rope(
    x: GpuTensor,
    tokens: number,
    heads: number,
    headDim: number,
    rowStride: number,
    cos: GpuTensor,
    sin: GpuTensor,
    offset = 0,
  ): void {
    need(headDim % 2 === 0, `rope needs an even head dim (got ${headDim})`);
    need(
      cos.length >= (tokens * headDim) / 2 && sin.length >= (tokens * headDim) / 2,
      'rope tables too short',
    );
    need(
      x.length >= offset + (tokens - 1) * rowStride + heads * headDim,
      `rope x too short for ${tokens} rows`,
    );
    const params = this.params([tokens, heads, headDim, rowStride, offset, 0, 0, 0]);
    this.dispatch(ropeSource, [x, cos, sin, params], groups((heads * headDim) / 2), tokens);
  }

  /** ids[r] = argmax of logits row r of n (lowest index on ties); ids is an i32 tensor. */
  argmaxRows(ids: GpuTensor, logits: GpuTensor, rows: number, n: number): void {
    need(
      logits.length >= rows * n && ids.length >= rows,
      `argmaxRows needs ${rows} x ${n} logits and ${rows} ids`,
    );
    this.dispatch(argmaxRowsSource, [logits, ids, this.params([rows, n, 0, 0])], rows, 1);
  }

  /**
   * The k best entries of each logits row of n (larger first, lower index on ties, NaN as -inf):
   * out [rows][2k], per row k values then k indices as i32 bit patterns (see splitTopK).
   */
  topKRows(out: GpuTensor, logits: GpuTensor, rows: number, n: number, k: number): void {
    need(k >= 1 && k <= n, `topKRows needs 1 <= k <= n, got k ${k} of ${n}`);
    need(
      logits.length >= rows * n && out.length >= rows * 2 * k,
      `topKRows needs ${rows} x ${n} logits and ${rows} x ${2 * k} outputs`,
    );
    this.dispatch(topKRowsSource, [logits, out, this.params([rows, n, k, NEG_INF_BITS])], rows, 1);
  }

  /**
   * After topKRows(out, logits, rows, n, k): out[rows * 2k + r] = the f32 sum of
   * exp((z - top) * invTemperatures[r]) over row r's entries after its k-th (NaN and -inf weigh
   * nothing), the weight a draw over the whole row has outside the selected head.
   */
  tailWeights(
    out: GpuTensor,
    logits: GpuTensor,
    invTemperatures: GpuTensor,
    rows: number,
    n: number,
    k: number,
  ): void {
    need(k >= 1 && k <= n, `tailWeights needs 1 <= k <= n, got k ${k} of ${n}`);
    need(
      logits.length >= rows * n && out.length >= rows * (2 * k + 1) && invTemperatures.length >= rows,
      `tailWeights needs ${rows} x ${n} logits, ${rows} temperatures and ${rows} x ${2 * k + 1} outputs`,
    );
    this.dispatch(tailWeightsSource, [logits, invTemperatures, out, this.params([rows, n, k, 0])], rows, 1);
  }

  /** K/V of a step's qkv rows [T][qkvStride] (k at kOffset, v at vOffset) into their cache slots. */
  writeKv(
    kCache: GpuTensor,
    vCache: GpuTensor,
    qkv: GpuTensor,
    slots: GpuTensor,
    geometry: AttentionGeometry,
  ): void {
    const { layout, tokens } = geometry;
    need(slots.length >= tokens, `writeKv has ${slots.length} slots for ${tokens} tokens`);
    const params = this.attentionParams(geometry);
    const groupsX = groups(layout.numKvHeads * layout.headDim);
    this.dispatch(writeKvSource, [qkv, slots, kCache, vCache, params], groupsX, tokens);
  }

  /**
   * out [T][numHeads*headDim] = causal paged attention of the q rows of qkv. tokenInfo: i32
   * pairs (sequence, position) per token; blockTables [numSeqs][maxBlocksPerSeq].
   */
  pagedAttention(
    out: GpuTensor,
    qkv: GpuTensor,
    kCache: GpuTensor,
    vCache: GpuTensor,
    tokenInfo: GpuTensor,
    blockTables: GpuTensor,
    geometry: AttentionGeometry,
  ): void {
    const { layout, tokens, numHeads } = geometry;
    need(layout.headDim <= MAX_HEAD_DIM, `head dim ${layout.headDim} exceeds ${MAX_HEAD_DIM}`);
    need(
      numHeads % layout.numKvHeads === 0,
      `${numHeads} query heads do not group over ${layout.numKvHeads}`,
    );
    need(tokenInfo.length >= 2 * tokens, `pagedAttention needs (sequence, position) for ${tokens} tokens`);
    const tensors = [qkv, kCache, vCache, tokenInfo, blockTables, out, this.attentionParams(geometry)];
    this.dispatch(pagedAttentionSource, tensors, groups(numHeads), tokens);
  }

  private attentionParams(g: AttentionGeometry): GpuTensor {
    const values = new Uint32Array([
      g.tokens,
      g.numHeads,
      g.layout.numKvHeads,
      g.layout.headDim,
      g.layout.blockSize,
      g.maxBlocksPerSeq,
      g.rowStride,
      0,
      g.kOffset,
      g.vOffset,
      0,
      0,
    ]);
    new Float32Array(values.buffer)[7] = g.scale;
    return this.params(values);
  }
}

/** Row r of topKRows' output: its k values and their indices in the row. */
export function splitTopK(
  out: Float32Array,
  r: number,
  k: number,
): { values: Float32Array; ids: Int32Array } {
  const start = r * 2 * k;
  return {
    values: out.subarray(start, start + k),
    ids: new Int32Array(out.buffer, out.byteOffset + (start + k) * 4, k),
  };
}

function groups(n: number): number {
  return Math.max(1, Math.ceil(n / WORKGROUP));
}
