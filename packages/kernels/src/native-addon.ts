// Loads the compiled N-API addon (build/Release/seesaw_kernels.node) and describes its raw
// entry points. Weights are flattened to (dtype code, rows, cols, data) by the index wrapper.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Instruction-set paths of the f32/f16/bf16 matmul; every path gives the same bits. */
export type MatmulPath = 'avx2' | 'avx512';

export interface NativeKernels {
  setNumThreads(n: number): void;
  getNumThreads(): number;
  matmul(
    out: Float32Array,
    x: Float32Array,
    m: number,
    dtype: number,
    rows: number,
    cols: number,
    data: Float32Array | Uint16Array,
    bias: Float32Array | undefined,
    leaves?: number,
    path?: MatmulPath,
  ): void;
  matmulPaths(): { supported: MatmulPath[]; chosen: MatmulPath };
  rmsNorm(out: Float32Array, x: Float32Array, weight: Float32Array, eps: number): void;
  addInPlace(x: Float32Array, y: Float32Array): void;
  copyRows(
    src: Uint8Array,
    srcStart: number,
    srcRowBytes: number,
    dest: Uint8Array,
    destStart: number,
    destRowBytes: number,
    runBytes: number,
    numRows: number,
  ): void;
  populatePages(bytes: Uint8Array, start: number, end: number): boolean;
  rope(
    x: Float32Array,
    numTokens: number,
    numHeads: number,
    headDim: number,
    rowStride: number,
    cos: Float32Array,
    sin: Float32Array,
  ): void;
  siluMul(out: Float32Array, gateUp: Float32Array, rows: number, intermediate: number): void;
  embed(
    out: Float32Array,
    dtype: number,
    rows: number,
    cols: number,
    data: Float32Array | Uint16Array,
    ids: Int32Array,
  ): void;
  writeKv(
    kCache: Float32Array | Uint16Array,
    vCache: Float32Array | Uint16Array,
    k: Float32Array,
    v: Float32Array,
    rowStride: number,
    slots: Int32Array,
    numKvHeads: number,
    headDim: number,
    blockSize: number,
    kvDtype: number,
  ): void;
  pagedAttention(
    out: Float32Array,
    q: Float32Array,
    qRowStride: number,
    kCache: Float32Array | Uint16Array,
    vCache: Float32Array | Uint16Array,
    queryStart: Int32Array,
    contextLens: Int32Array,
    blockTables: Int32Array,
    maxBlocksPerSeq: number,
    numHeads: number,
    numKvHeads: number,
    headDim: number,
    blockSize: number,
    scale: number,
    kvDtype: number,
  ): void;
  argmaxRows(logits: Float32Array, rows: number, n: number): Int32Array;
  sampleRow(logits: Float32Array, temperature: number, topK: number, topP: number, uniform: number): number;
  sampleRows(out: Int32Array, logits: Float32Array, vocab: number, settings: Float64Array): void;
  f32ToBf16(src: Float32Array, dst: Uint16Array): void;
  f32ToF16(src: Float32Array, dst: Uint16Array): void;
  measureFmaPeak(iterations: number, wide?: boolean): number;
  measureReadSeconds(buffer: Float32Array): number;
  quantMatmul(
    out: Float32Array,
    x: Float32Array,
    m: number,
    type: number,
    data: Uint8Array,
    rows: number,
    cols: number,
    path: number,
  ): void;
  quantKernelPaths(): { chosen: string; supported: string[] };
  quantPack(type: number, blocks: Uint8Array, rows: number, cols: number, packed: Uint8Array): void;
  quantUnpack(type: number, packed: Uint8Array, rows: number, cols: number, blocks: Uint8Array): void;
  quantMatmulPacked(
    out: Float32Array,
    x: Float32Array,
    m: number,
    type: number,
    packed: Uint8Array,
    rows: number,
    cols: number,
    path: number,
  ): void;
  quantPackedBytes(type: number, rows: number, cols: number): number;
}

const addonPath = fileURLToPath(new URL('../build/Release/seesaw_kernels.node', import.meta.url));

function loadAddon(): NativeKernels {
  if (!existsSync(addonPath)) {
    throw new Error(
      `@seesaw/kernels: native addon not built (${addonPath} missing); ` +
        'run `cd packages/kernels && node scripts/build-native.mjs` (or `pnpm --filter @seesaw/kernels build`)',
    );
  }
  const require = createRequire(import.meta.url);
  return require(addonPath) as NativeKernels;
}

export const native: NativeKernels = loadAddon();
