/**
 * Swaps of a GPU KV cache through the host's kv-store: a sequence's blocks are copied, in
 * stream order with the steps' compute, into one compact buffer and read back through a mapped
 * staging buffer (swap-out), or written into a buffer mapped at creation and copied into their
 * blocks (swap-in). On the host the compact copy looks like a paged cache of just this
 * sequence's blocks, so the kv-store's own gather/scatter produce and read the same head-major
 * tensor as the CPU device's swaps. A step's write-backs go layer group by layer group while it
 * computes (gpu-kv-write-backs.ts).
 */
import type { KvBlockCopier, LayerKvPut, StepWriteBacks } from '@seesaw/gpu-actor';
import { gatherSequenceKv, scatterSequenceKv } from '@seesaw/kv-store';
import type { StepKvSwap, Tensor } from '@seesaw/protocol';
import type { GpuKvCache } from './gpu-kv-cache.ts';
import { GpuKvWriteBacks, WRITE_BACK_SUBMITS_PER_STEP } from './gpu-kv-write-backs.ts';
import type { WebGpuKernels } from './webgpu-kernels.ts';

export class GpuKvSwap implements KvBlockCopier {
  /** writeBackSubmits: submissions a step's write-backs may add (its layers' groups). */
  constructor(
    private readonly kernels: WebGpuKernels,
    private readonly cache: GpuKvCache,
    private readonly writeBackSubmits = WRITE_BACK_SUBMITS_PER_STEP,
  ) {}

  startLayerWriteBacks(swaps: readonly StepKvSwap[], put: LayerKvPut): StepWriteBacks {
    return new GpuKvWriteBacks(this.kernels, this.cache, swaps, put, this.writeBackSubmits);
  }

  get layout() {
    return this.cache.layout;
  }

  get numBlocks(): number {
    return this.cache.numBlocks;
  }

  async gather(swap: StepKvSwap): Promise<Tensor> {
    const n = swap.blockIds.length;
    const compact = this.kernels.allocate(this.numLayers * 2 * n * this.blockFloats);
    try {
      this.forEachBlockCopy(swap, (tensor, cacheOffset, compactOffset) => {
        this.kernels.copy(compact, compactOffset, tensor, cacheOffset, this.blockFloats);
      });
      const host = await this.kernels.read(compact);
      const { keys, values } = this.compactViews(host, n);
      return gatherSequenceKv(keys, values, identity(n), swap.numTokens, this.layout, this.allHeads);
    } finally {
      compact.buffer.destroy();
    }
  }

  scatter(swap: StepKvSwap, tensor: Tensor): void {
    const n = swap.blockIds.length;
    // The tail of a last, partly filled block is zeros here: those slots are written by the
    // step that computes their tokens before any attention reads them.
    const host = new Float32Array(this.numLayers * 2 * n * this.blockFloats);
    const { keys, values } = this.compactViews(host, n);
    scatterSequenceKv(keys, values, identity(n), swap.numTokens, this.layout, this.allHeads, tensor);
    const staged = this.kernels.upload(host);
    this.forEachBlockCopy(swap, (cacheTensor, cacheOffset, compactOffset) => {
      this.kernels.copy(cacheTensor, cacheOffset, staged, compactOffset, this.blockFloats);
    });
    this.kernels.flush();
    staged.buffer.destroy(); // deferred by WebGPU until the submitted copies are done
  }

  private get numLayers(): number {
    return this.cache.keys.length;
  }

  private get blockFloats(): number {
    const { numKvHeads, blockSize, headDim } = this.cache.layout;
    return numKvHeads * blockSize * headDim;
  }

  private get allHeads() {
    return { start: 0, end: this.cache.layout.numKvHeads };
  }

  /** Compact layout: [layer][K, V][block i of the sequence][block floats]. */
  private forEachBlockCopy(
    swap: StepKvSwap,
    copy: (cacheTensor: GpuKvCache['keys'][number], cacheOffset: number, compactOffset: number) => void,
  ): void {
    const n = swap.blockIds.length;
    const b = this.blockFloats;
    for (let l = 0; l < this.numLayers; l++) {
      [this.cache.keys[l], this.cache.values[l]].forEach((tensor, kv) => {
        swap.blockIds.forEach((block, i) => {
          copy(tensor, block * b, ((l * 2 + kv) * n + i) * b);
        });
      });
    }
  }

  private compactViews(host: Float32Array, n: number): { keys: Float32Array[]; values: Float32Array[] } {
    const span = n * this.blockFloats;
    const view = (l: number, kv: number) => host.subarray((l * 2 + kv) * span, (l * 2 + kv + 1) * span);
    return {
      keys: Array.from({ length: this.numLayers }, (_, l) => view(l, 0)),
      values: Array.from({ length: this.numLayers }, (_, l) => view(l, 1)),
    };
  }
}

function identity(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}
