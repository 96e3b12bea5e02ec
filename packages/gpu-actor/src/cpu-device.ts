import * as kernels from '@seesaw/kernels';
import type { HostKvStore } from '@seesaw/kv-store';
import { Checkpoint, type ModelConfig, type ShardPosition, type ShardSpec, shardSpec } from '@seesaw/model';
import { ENGINE_DEFAULTS, type StepBatch, type StepKvTimings, type StepResult } from '@seesaw/protocol';
import { buildForwardBatch } from './forward-batch.ts';
import { HostKvSwapper } from './host-kv-swapper.ts';
import type { KvCacheArena } from './kv-cache-arena.ts';
import { LlamaForward } from './llama-forward.ts';
import { loadModelWeights, type ModelWeights } from './model-weights.ts';
import { PagedKvCache } from './paged-kv-cache.ts';
import { checkStepTokenIds, type SequenceSampling, StepSampler } from './step-sampler.ts';
import type { TensorParallelGroup } from './tensor-parallel-group.ts';

export interface CpuDeviceOptions {
  /** Kernel threads of this device (its share of the host's cores). Default 1. */
  numThreads?: number;
  /** Bytes of device-tier KV cache (this shard's layers and KV heads, K and V). Default 512 MiB. */
  kvCacheBytes?: number;
  /** Tokens per KV block. Default 16. */
  blockSize?: number;
  /** Element type of the KV cache (attention accumulates in f32 either way). Default f32. */
  kvDtype?: kernels.KvDType;
  /** The part of the model this device holds; default the whole model (tp = pp = 1). */
  shard?: ShardPosition;
  /** This device's tensor-parallel group; required when shard.tp > 1. */
  group?: TensorParallelGroup;
  /**
   * Host KV store on this host that steps' swapOuts/swapIns copy to and from (slots of
   * blockSize tokens over all layers and KV heads, of kvDtype). Whole-model devices only for now (a
   * sharded device would swap through the kv-store actor). Without it a swap fails the step.
   */
  hostKv?: HostKvStore;
  /** Bytes the KV cache is viewed from, kept across a worker's re-shards; default a fresh cache. */
  kvArena?: KvCacheArena;
}

/** What a pipeline stage hands on: the next stage's input, or (last stage) the step's answer. */
export type StageOutput = { hidden: Float32Array } | StepResult;

/** The config a shard's KV cache is sized by: only its stage's layers and its rank's KV heads. */
function shardCacheConfig(config: ModelConfig, spec: ShardSpec): ModelConfig {
  return {
    ...config,
    numLayers: spec.layers.end - spec.layers.start,
    numKvHeads: spec.kvHeads.end - spec.kvHeads.start,
  };
}

/** As many KV blocks of this shard's layers x KV heads as kvCacheBytes holds; at least one. */
function createKvCache(
  config: ModelConfig,
  spec: ShardSpec,
  kvCacheBytes: number,
  blockSize: number,
  dtype: kernels.KvDType,
  arena?: KvCacheArena,
): PagedKvCache {
  const cacheConfig = shardCacheConfig(config, spec);
  const bytesPerBlock = PagedKvCache.bytesPerBlock(cacheConfig, blockSize, dtype);
  const numBlocks = Math.floor(kvCacheBytes / bytesPerBlock);
  if (numBlocks < 1) {
    throw new RangeError(
      `KV cache of ${kvCacheBytes} bytes holds no block of ${blockSize} tokens (${bytesPerBlock} bytes each)`,
    );
  }
  return new PagedKvCache(cacheConfig, numBlocks, blockSize, dtype, arena);
}

/**
 * One CPU "device": the weights of its shard (by default the whole model), a paged KV cache for
 * its layers and KV heads, its part of the forward pass and, on the last pipeline stage, the
 * sampler. It executes the coordinator's step messages and keeps only per-sequence sampling
 * settings between steps.
 */
export class CpuDevice {
  readonly blockSize: number;
  readonly numKvBlocks: number;
  private readonly forward: LlamaForward;
  private readonly cache: PagedKvCache;
  private readonly sampler: StepSampler;
  private readonly swapper: HostKvSwapper | null;

  private constructor(
    readonly config: ModelConfig,
    forward: LlamaForward,
    cache: PagedKvCache,
    readonly weightBytes: number,
    hostKv: HostKvStore | undefined,
  ) {
    this.forward = forward;
    this.cache = cache;
    this.swapper = hostKv ? new HostKvSwapper(hostKv, cache) : null;
    this.sampler = new StepSampler(config.vocabSize);
    this.blockSize = cache.layout.blockSize;
    this.numKvBlocks = cache.numBlocks;
  }

  static async load(modelDir: string, options: CpuDeviceOptions = {}): Promise<CpuDevice> {
    const blockSize = options.blockSize ?? ENGINE_DEFAULTS.blockSize;
    const kvCacheBytes = options.kvCacheBytes ?? ENGINE_DEFAULTS.kvCacheBytes;
    const kvDtype = options.kvDtype ?? 'f32';
    kernels.setNumThreads(options.numThreads ?? 1);
    const checkpoint = Checkpoint.open(modelDir);
    try {
      const config = checkpoint.config;
      const spec = shardSpec(config, options.shard ?? { tp: 1, tpRank: 0, pp: 1, ppStage: 0 });
      if (options.hostKv) {
        if (spec.tp > 1 || spec.pp > 1)
          throw new RangeError('a host KV store is supported on whole-model devices only (tp = pp = 1)');
        HostKvSwapper.checkStore(options.hostKv, config, blockSize, kvDtype);
      }
      const cache = createKvCache(config, spec, kvCacheBytes, blockSize, kvDtype);
      const weights = loadModelWeights(checkpoint, spec);
      const forward = new LlamaForward(config, weights, options.group);
      return new CpuDevice(config, forward, cache, weights.numBytes, options.hostKv);
    } finally {
      checkpoint.close();
    }
  }

  /**
   * A device over weights assembled elsewhere (a device worker's load or re-shard), its KV cache
   * sized from kvCacheBytes as load sizes it. No in-process host KV store: a worker swaps through
   * the kv-store actor.
   */
  static fromWeights(
    config: ModelConfig,
    weights: ModelWeights,
    options: Pick<
      CpuDeviceOptions,
      'numThreads' | 'kvCacheBytes' | 'blockSize' | 'kvDtype' | 'group' | 'kvArena'
    > = {},
  ): CpuDevice {
    kernels.setNumThreads(options.numThreads ?? 1);
    const cache = createKvCache(
      config,
      weights.shard,
      options.kvCacheBytes ?? ENGINE_DEFAULTS.kvCacheBytes,
      options.blockSize ?? ENGINE_DEFAULTS.blockSize,
      options.kvDtype ?? 'f32',
      options.kvArena,
    );
    const forward = new LlamaForward(config, weights, options.group);
    return new CpuDevice(config, forward, cache, weights.numBytes, undefined);
  }

  /** Which layers, heads, MLP columns and vocabulary rows this device holds. */
  get shard(): ShardSpec {
    return this.forward.shard;
  }

  /** The paged KV cache of this shard's layers x KV heads (a device worker swaps it through the kv-store actor). */
  get kvCache(): PagedKvCache {
    return this.cache;
  }

  /** The same cache, under the name the device worker's seam (StepDevice) reads. */
  get kvSwapTarget(): PagedKvCache {
    return this.cache;
  }

  get kvCacheBytes(): number {
    return this.cache.numBytes;
  }

  /** Runs a whole step on a device that holds every layer (no pipeline); TP ranks all answer alike. */
  async execute(step: StepBatch): Promise<StepResult> {
    if (!this.shard.isFirstStage || !this.shard.isLastStage) {
      throw new Error(`stage ${this.shard.ppStage} of ${this.shard.pp}: use executeStage in a pipeline`);
    }
    return (await this.executeStage(step)) as StepResult;
  }

  /**
   * Runs this device's stage of a step. The first stage reads the step's token ids; later stages
   * take inputHidden [T][H] from the stage before. Non-last stages return { hidden } for the next
   * stage; the last stage samples and returns the StepResult (with kvTimings when the step
   * carried write-backs or prefetches). onLayerKvWritten(local layer) is called as soon as that
   * layer's K/V of the step are in the cache (a device worker's write-backs to the kv-store).
   */
  async executeStage(
    step: StepBatch,
    inputHidden?: Float32Array,
    onLayerKvWritten?: (layer: number) => void,
  ): Promise<StageOutput> {
    const hasTieredKv = !!(step.kvWriteBacks?.length || step.prefetches?.length);
    let prefetchMs = 0;
    // Swaps come before compute: swapped-out blocks may be reused, swapped-in ones read, by this step.
    if (step.swapOuts?.length || step.swapIns?.length || hasTieredKv) {
      if (!this.swapper)
        throw new Error(
          `step ${step.stepId} moves KV to or from the host, but this device has no host KV store`,
        );
      this.swapper.apply(step);
      const prefetchStart = performance.now();
      this.swapper.prefetch(step);
      prefetchMs = performance.now() - prefetchStart;
    }
    const writeBacks = this.swapper?.startWriteBacks(step);
    this.sampler.update(step);
    checkStepTokenIds(step, this.config.vocabSize);
    const batch = buildForwardBatch(step.seqs, this.blockSize, this.numKvBlocks);
    const onLayer =
      writeBacks && onLayerKvWritten
        ? (layer: number) => {
            writeBacks.onLayerKvWritten(layer);
            onLayerKvWritten(layer);
          }
        : (writeBacks?.onLayerKvWritten ?? onLayerKvWritten);
    const group = this.forward.group;
    // A TP rank puts in vocabulary order only the logits rows its sampler reads.
    const logitRows = group && this.sampler.rowsReadAcrossRanks(step, group);
    const computeStart = performance.now();
    const output = await this.forward.run(batch, this.cache, inputHidden, onLayer, logitRows);
    const computeMs = performance.now() - computeStart;
    const written = await writeBacks?.finish();
    if (!this.shard.isLastStage) return { hidden: output };
    const result = group
      ? await this.sampler.sampleAcrossRanks(step, output, group)
      : this.sampler.sample(step, output);
    if (hasTieredKv) {
      const kvTimings: StepKvTimings = {
        computeMs,
        prefetchWaitMs: 0,
        prefetchMs,
        writeBackMs: written?.writeBackMs ?? 0,
        writeBackWaitMs: written?.writeBackWaitMs ?? 0,
      };
      result.kvTimings = kvTimings;
    }
    return result;
  }

  /**
   * The sampling settings of every sequence this device knows. They belong to the replica, not
   * to a layout: a re-sharding worker hands them to its next device (restoreSequenceSampling),
   * as step messages only announce a sequence once.
   */
  sequenceSampling(): Map<number, SequenceSampling> {
    return this.sampler.snapshot();
  }

  restoreSequenceSampling(snapshot: ReadonlyMap<number, SequenceSampling>): void {
    this.sampler.restore(snapshot);
  }

  close(): void {
    this.sampler.clear();
  }
}
