import type { KvLayout } from '@seesaw/kernels';
import type { ModelConfig } from '@seesaw/model';
import type { KvCacheArena } from './kv-cache-arena.ts';

/**
 * The device tier of the KV cache: per layer, one K and one V array of
 * [numBlocks][numKvHeads][blockSize][headDim] f32. Which blocks belong to which sequence is
 * decided by the coordinator's block accounting; this class only owns the memory.
 */
export class PagedKvCache {
  readonly layout: KvLayout;
  readonly numBlocks: number;
  readonly keys: Float32Array[];
  readonly values: Float32Array[];

  /** With `arena`, the arrays are views into its bytes (reused across re-shards), else fresh. */
  constructor(config: ModelConfig, numBlocks: number, blockSize: number, arena?: KvCacheArena) {
    this.layout = { numKvHeads: config.numKvHeads, headDim: config.headDim, blockSize };
    this.numBlocks = numBlocks;
    const floatsPerLayer = numBlocks * blockSize * config.numKvHeads * config.headDim;
    const layerBytes = floatsPerLayer * Float32Array.BYTES_PER_ELEMENT;
    const buffer = arena?.take(2 * config.numLayers * layerBytes);
    const array = (index: number) =>
      buffer
        ? new Float32Array(buffer, index * layerBytes, floatsPerLayer)
        : new Float32Array(floatsPerLayer);
    this.keys = Array.from({ length: config.numLayers }, (_, layer) => array(2 * layer));
    this.values = Array.from({ length: config.numLayers }, (_, layer) => array(2 * layer + 1));
  }

  /** Bytes one block takes over all layers, K and V. */
  static bytesPerBlock(config: ModelConfig, blockSize: number): number {
    return (
      config.numLayers * 2 * blockSize * config.numKvHeads * config.headDim * Float32Array.BYTES_PER_ELEMENT
    );
  }

  get numBytes(): number {
    return this.keys.reduce((sum, k) => sum + k.byteLength * 2, 0);
  }
}
