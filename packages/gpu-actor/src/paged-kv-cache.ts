import {
  allocateKvCache,
  type KvCacheArray,
  type KvDType,
  type KvLayout,
  kvDtypeBytes,
} from '@seesaw/kernels';
import type { ModelConfig } from '@seesaw/model';
import type { KvCacheArena } from './kv-cache-arena.ts';

/**
 * The device tier of the KV cache: per layer, one K and one V array of
 * [numBlocks][numKvHeads][blockSize][headDim] elements of `dtype` (f32, or bf16/f16 bit
 * patterns: half the bytes, so twice the blocks for the same budget). Which blocks belong to
 * which sequence is decided by the coordinator's block accounting; this class only owns the memory.
 */
export class PagedKvCache {
  readonly layout: KvLayout;
  readonly dtype: KvDType;
  readonly numBlocks: number;
  readonly keys: KvCacheArray[];
  readonly values: KvCacheArray[];

  /** With `arena`, the arrays are views into its bytes (reused across re-shards), else fresh. */
  constructor(
    config: ModelConfig,
    numBlocks: number,
    blockSize: number,
    dtype: KvDType = 'f32',
    arena?: KvCacheArena,
  ) {
    this.layout = { numKvHeads: config.numKvHeads, headDim: config.headDim, blockSize, dtype };
    this.dtype = dtype;
    this.numBlocks = numBlocks;
    const elementsPerLayer = numBlocks * blockSize * config.numKvHeads * config.headDim;
    const layerBytes = elementsPerLayer * kvDtypeBytes(dtype);
    const buffer = arena?.take(2 * config.numLayers * layerBytes);
    const array = (index: number): KvCacheArray => {
      if (!buffer) return allocateKvCache(dtype, elementsPerLayer);
      return dtype === 'f32'
        ? new Float32Array(buffer, index * layerBytes, elementsPerLayer)
        : new Uint16Array(buffer, index * layerBytes, elementsPerLayer);
    };
    this.keys = Array.from({ length: config.numLayers }, (_, layer) => array(2 * layer));
    this.values = Array.from({ length: config.numLayers }, (_, layer) => array(2 * layer + 1));
  }

  /** Bytes one block takes over all layers, K and V, in `dtype`. */
  static bytesPerBlock(config: ModelConfig, blockSize: number, dtype: KvDType = 'f32'): number {
    return config.numLayers * 2 * blockSize * config.numKvHeads * config.headDim * kvDtypeBytes(dtype);
  }

  get numBytes(): number {
    return this.keys.reduce((sum, k) => sum + k.byteLength * 2, 0);
  }
}
