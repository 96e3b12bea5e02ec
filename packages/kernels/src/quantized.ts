// Matmul with ggml block-quantized weights (Q8_0, Q4_0) on the native int8 kernels.
import { native } from './native-addon.ts';

export type QuantWeightType = 'q8_0' | 'q4_0';

/** Weight W [rows = N][cols = K] as ggml blocks of 32: per row K/32 blocks of an f16 scale and
 *  32 int8 codes (Q8_0, 34 bytes) or 32 packed nibbles (Q4_0, 18 bytes: element i < 16 in the low
 *  nibble of byte i, element 16 + i in its high nibble; value = (nibble - 8) * scale). */
export interface QuantizedWeight {
  type: QuantWeightType;
  rows: number;
  cols: number;
  data: Uint8Array;
}

/** Instruction-set paths of the int8 block dot products, slowest first. */
export const QUANT_KERNEL_PATHS = ['scalar', 'avx2', 'avxvnni', 'avx512vnni'] as const;
export type QuantKernelPath = (typeof QUANT_KERNEL_PATHS)[number];

export const QUANT_BLOCK_BYTES: Record<QuantWeightType, number> = { q8_0: 34, q4_0: 18 };

/** The path the kernels use by default (fastest this CPU has, or SEESAW_QUANT_KERNEL) and every
 *  path this CPU can run. */
export function quantKernelPaths(): { chosen: QuantKernelPath; supported: QuantKernelPath[] } {
  return native.quantKernelPaths() as { chosen: QuantKernelPath; supported: QuantKernelPath[] };
}

function pathCodeOf(path: QuantKernelPath | undefined): number {
  if (path === undefined) return -1;
  const code = QUANT_KERNEL_PATHS.indexOf(path);
  if (code < 0) throw new RangeError(`unknown kernel path ${path}`);
  return code;
}

const typeCode = (type: QuantWeightType) => (type === 'q8_0' ? 0 : 1);

/** The same weight re-laid for the kernels (done once, at load; native/quant_packed.h): per tile
 *  of 16 rows, each block's codes interleaved in 4-code groups (one 512-bit load holds a group of
 *  all 16 rows), the f16 scales and (Q8_0) int16 code sums beside them, so every matmul, one
 *  activation row or many, streams the weight once without unpacking or horizontal sums.
 *  Q8_0 takes 36 bytes a block of 32 (ggml: 34), Q4_0 18 (ggml: 18). */
export interface PackedQuantizedWeight {
  type: QuantWeightType;
  rows: number;
  cols: number;
  data: Uint8Array;
}

export function packQuantizedWeight(w: QuantizedWeight): PackedQuantizedWeight {
  const data = new Uint8Array(native.quantPackedBytes(typeCode(w.type), w.rows, w.cols));
  native.quantPack(typeCode(w.type), w.data, w.rows, w.cols, data);
  return { type: w.type, rows: w.rows, cols: w.cols, data };
}

/** The ggml blocks of a packed weight (exact inverse of packQuantizedWeight). */
export function unpackQuantizedWeight(p: PackedQuantizedWeight): QuantizedWeight {
  const data = new Uint8Array((p.rows * p.cols * QUANT_BLOCK_BYTES[p.type]) / 32);
  native.quantUnpack(typeCode(p.type), p.data, p.rows, p.cols, data);
  return { type: p.type, rows: p.rows, cols: p.cols, data };
}

/** quantizedMatmul on a packed weight: the same bits. */
export function packedQuantizedMatmul(
  out: Float32Array,
  x: Float32Array,
  m: number,
  w: PackedQuantizedWeight,
  path?: QuantKernelPath,
): void {
  native.quantMatmulPacked(out, x, m, typeCode(w.type), w.data, w.rows, w.cols, pathCodeOf(path));
}

/** out[m][N] = x[m][K] · Wᵀ with x quantized per 32-block to int8 (ggml's Q8_0 rule), exact int32
 *  block dot products and f32 block scales, blocks combined by the halving tree: the same bits on
 *  every path, whatever m, the neighbouring rows or the thread count. `path` forces one path. */
export function quantizedMatmul(
  out: Float32Array,
  x: Float32Array,
  m: number,
  w: QuantizedWeight,
  path?: QuantKernelPath,
): void {
  const pathCode = path === undefined ? -1 : QUANT_KERNEL_PATHS.indexOf(path);
  if (pathCode < -1 || (path !== undefined && pathCode < 0))
    throw new RangeError(`unknown kernel path ${path}`);
  native.quantMatmul(out, x, m, w.type === 'q8_0' ? 0 : 1, w.data, w.rows, w.cols, pathCode);
}
