import * as kernels from '@seesaw/kernels';
import { Checkpoint, type ModelConfig } from '@seesaw/model';
import type { DeviceSamplingParams, StepBatch, StepResult } from '@seesaw/protocol';
import { buildForwardBatch } from './forward-batch.ts';
import { LlamaForward } from './llama-forward.ts';
import { loadModelWeights } from './model-weights.ts';
import { PagedKvCache } from './paged-kv-cache.ts';
import { samplingUniform } from './sampling-rng.ts';

export interface CpuDeviceOptions {
  /** Kernel threads of this device (its share of the host's cores). Default 1. */
  numThreads?: number;
  /** Bytes of device-tier KV cache (all layers, K and V). Default 512 MiB. */
  kvCacheBytes?: number;
  /** Tokens per KV block. Default 16. */
  blockSize?: number;
}

const DEFAULT_KV_CACHE_BYTES = 512 * 1024 * 1024;
const DEFAULT_BLOCK_SIZE = 16;

/**
 * One CPU "device": the whole model's weights, a paged KV cache, the forward pass and the
 * sampler. It executes the coordinator's step messages and keeps only per-sequence sampling
 * settings between steps.
 */
export class CpuDevice {
  readonly blockSize: number;
  readonly numKvBlocks: number;
  private readonly forward: LlamaForward;
  private readonly cache: PagedKvCache;
  private readonly sampling = new Map<number, DeviceSamplingParams>();

  private constructor(
    readonly config: ModelConfig,
    forward: LlamaForward,
    cache: PagedKvCache,
    readonly weightBytes: number,
  ) {
    this.forward = forward;
    this.cache = cache;
    this.blockSize = cache.layout.blockSize;
    this.numKvBlocks = cache.numBlocks;
  }

  static async load(modelDir: string, options: CpuDeviceOptions = {}): Promise<CpuDevice> {
    const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
    const kvCacheBytes = options.kvCacheBytes ?? DEFAULT_KV_CACHE_BYTES;
    kernels.setNumThreads(options.numThreads ?? 1);
    const checkpoint = Checkpoint.open(modelDir);
    try {
      const config = checkpoint.config;
      const numBlocks = Math.floor(kvCacheBytes / PagedKvCache.bytesPerBlock(config, blockSize));
      if (numBlocks < 1) {
        throw new RangeError(
          `KV cache of ${kvCacheBytes} bytes holds no block of ${blockSize} tokens ` +
            `(${PagedKvCache.bytesPerBlock(config, blockSize)} bytes each)`,
        );
      }
      const weights = loadModelWeights(checkpoint);
      const cache = new PagedKvCache(config, numBlocks, blockSize);
      return new CpuDevice(config, new LlamaForward(config, weights), cache, weights.numBytes);
    } finally {
      checkpoint.close();
    }
  }

  get kvCacheBytes(): number {
    return this.cache.numBytes;
  }

  async execute(step: StepBatch): Promise<StepResult> {
    for (const seqId of step.releasedSeqIds) this.sampling.delete(seqId);
    for (const added of step.addedSeqs) this.sampling.set(added.seqId, added.sampling);
    for (const seq of step.seqs) {
      for (const id of seq.tokenIds) {
        if (!Number.isInteger(id) || id < 0 || id >= this.config.vocabSize) {
          throw new RangeError(
            `sequence ${seq.seqId}: token id ${id} outside the vocabulary [0, ${this.config.vocabSize})`,
          );
        }
      }
    }
    const batch = buildForwardBatch(step.seqs, this.blockSize, this.numKvBlocks);
    const logits = this.forward.run(batch, this.cache);

    const vocab = this.config.vocabSize;
    const sampledSeqs = step.seqs.filter((seq) => seq.isSampled);
    // Copied before sampling, which may scale rows in place.
    const returnedLogits = step.isLogitsReturned
      ? sampledSeqs.map((_, i) => logits.slice(i * vocab, (i + 1) * vocab))
      : undefined;
    const greedy = kernels.argmaxRows(logits, sampledSeqs.length, vocab);
    const sampled = sampledSeqs.map((seq, i) => {
      const params = this.sampling.get(seq.seqId);
      if (!params) throw new Error(`sequence ${seq.seqId} was sampled before it was added`);
      if (params.temperature <= 0) return { seqId: seq.seqId, tokenId: greedy[i] };
      const row = logits.subarray(i * vocab, (i + 1) * vocab);
      const uniform = samplingUniform(params.seed, seq.outputIndex);
      const tokenId = kernels.sampleRow(row, params.temperature, params.topK, params.topP, uniform);
      return { seqId: seq.seqId, tokenId };
    });
    return returnedLogits
      ? { stepId: step.stepId, sampled, logits: returnedLogits }
      : { stepId: step.stepId, sampled };
  }

  close(): void {
    this.sampling.clear();
  }
}
