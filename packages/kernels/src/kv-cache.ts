// The KV cache's element types and layout, as the attention kernels read them.

/** Element type of a KV cache: f32 (Float32Array), or bf16 / f16 (Uint16Array of the raw
 *  16-bit patterns; values rounded to nearest even when written, widened exactly when read). */
export type KvDType = 'f32' | 'bf16' | 'f16';
export const KV_DTYPES: readonly KvDType[] = ['f32', 'bf16', 'f16'];
/** A KV cache array of `dtype`. */
export type KvCacheArray = Float32Array | Uint16Array;

/** One layer's paged KV cache, K and V separately, each laid out
 *  [numBlocks][numKvHeads][blockSize][headDim] (per block, per head, contiguous tokens), of
 *  `dtype` elements (f32 when absent). */
export interface KvLayout {
  numKvHeads: number;
  headDim: number;
  blockSize: number;
  dtype?: KvDType;
}

// Codes shared with native/simd.h (DType), for KV caches.
export const kvDtypeCodes: Record<KvDType, number> = { f32: 0, f16: 1, bf16: 2 };

/** A new zeroed KV cache array holding `elements` values of `dtype`. */
export function allocateKvCache(dtype: KvDType, elements: number): KvCacheArray {
  return dtype === 'f32' ? new Float32Array(elements) : new Uint16Array(elements);
}

/** Bytes of one KV cache element. */
export function kvDtypeBytes(dtype: KvDType): number {
  return dtype === 'f32' ? 4 : 2;
}
