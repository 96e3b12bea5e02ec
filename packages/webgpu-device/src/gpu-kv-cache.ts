import type { KvLayout } from '@seesaw/kernels';
import type { ModelConfig } from '@seesaw/model';
import type { WebGpuKernels } from './webgpu-kernels.ts';
import type { GpuTensor } from './webgpu-stream.ts';

/**
 * The device tier of the KV cache in GPU buffers: per layer K and V, [numBlocks][numKvHeads][blockSize][headDim].
 * config: the shard's view (its stage's layers, its rank's KV heads), as the CPU cache is sized.
 */
export class GpuKvCache {
  readonly layout: KvLayout;
  readonly keys: GpuTensor[];
  readonly values: GpuTensor[];

  constructor(
    kernels: WebGpuKernels,
    config: ModelConfig,
    readonly numBlocks: number,
    blockSize: number,
  ) {
    this.layout = { numKvHeads: config.numKvHeads, headDim: config.headDim, blockSize };
    const floats = numBlocks * blockSize * config.numKvHeads * config.headDim;
    this.keys = Array.from({ length: config.numLayers }, () => kernels.allocate(floats));
    this.values = Array.from({ length: config.numLayers }, () => kernels.allocate(floats));
  }

  /** Frees the buffers (deferred by WebGPU until submitted work that reads them ends). */
  destroy(): void {
    destroyAll(this.keys);
    destroyAll(this.values);
  }
}

/** Destroying buffers that submitted work still reads is deferred by WebGPU until it ends. */
export function destroyAll(list: GpuTensor[]): void {
  for (const t of list) t.buffer.destroy();
}
