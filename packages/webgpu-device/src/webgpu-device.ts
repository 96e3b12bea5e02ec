/**
 * The WebGPU backend of a device worker: its shard's weights and paged KV cache in GPU buffers,
 * stepped by WebGpuLlamaForward (TP all-reduces and PP hand-offs through host memory). It keeps the CPU device's contract (StepDevice):
 * the same block accounting and step messages, and the same sampler, so a step's tokens are
 * drawn by the same (seed, step) definition. What crosses to the host is as little as that
 * draw needs: greedy steps pick the ids on the GPU; other sampled steps bring back each row's
 * best logits and the weight of the rest (gpu-sampling.ts), and a row's logits only when that
 * head cannot decide its draw; steps with penalties, log probabilities or returned logits read
 * back whole logits rows.
 */
import {
  buildForwardBatch,
  checkStepTokenIds,
  type ModelWeights,
  type SequenceSampling,
  type StageOutput,
  type StepDevice,
  type StepDeviceFactory,
  type StepDeviceOptions,
  StepSampler,
} from '@seesaw/gpu-actor';
import type { ModelConfig, ShardSpec } from '@seesaw/model';
import { ENGINE_DEFAULTS, type StepBatch } from '@seesaw/protocol';
import { type GpuContext, openGpu } from './gpu-context.ts';
import { GpuKvCache } from './gpu-kv-cache.ts';
import { GpuKvSwap } from './gpu-kv-swap.ts';
import { SOFTWARE_ADAPTER_WRITE_BACK_SUBMITS, WRITE_BACK_SUBMITS_PER_STEP } from './gpu-kv-write-backs.ts';
import { candidatesPlan, sampleFromCandidates } from './gpu-sampling.ts';
import { WebGpuKernels } from './webgpu-kernels.ts';
import { type AfterLayerHook, WebGpuLlamaForward } from './webgpu-llama-forward.ts';

/** Bytes of one KV block over all layers, K and V (the CPU cache's accounting). */
function bytesPerBlock(config: ModelConfig, blockSize: number): number {
  return config.numLayers * 2 * blockSize * config.numKvHeads * config.headDim * 4;
}

/**
 * As many blocks as kvCacheBytes holds, and no more than one layer's K (or V) buffer can bind.
 * At least one, else a clear error.
 */
function numKvBlocksFor(
  config: ModelConfig,
  blockSize: number,
  kvCacheBytes: number,
  maxBindingBytes: number,
): number {
  const perBlock = bytesPerBlock(config, blockSize);
  const perLayerBlock = blockSize * config.numKvHeads * config.headDim * 4;
  const numBlocks = Math.min(
    Math.floor(kvCacheBytes / perBlock),
    Math.floor(maxBindingBytes / perLayerBlock),
  );
  if (numBlocks < 1) {
    throw new RangeError(
      `KV cache of ${kvCacheBytes} bytes holds no block of ${blockSize} tokens (${perBlock} bytes each)`,
    );
  }
  return numBlocks;
}

export class WebGpuDevice implements StepDevice {
  readonly shard: ShardSpec;
  readonly blockSize: number;
  readonly numKvBlocks: number;
  readonly weightBytes: number;
  readonly kvCacheBytes: number;
  /** The cache is in GPU buffers: the kv-store swapper copies blocks through staging buffers. */
  readonly kvSwapTarget: GpuKvSwap;
  private readonly forward: WebGpuLlamaForward;
  private readonly cache: GpuKvCache;
  private readonly sampler: StepSampler;

  constructor(
    context: GpuContext,
    readonly config: ModelConfig,
    weights: ModelWeights,
    options: Pick<StepDeviceOptions, 'kvCacheBytes' | 'blockSize' | 'kvDtype' | 'group'> = {},
  ) {
    // The WGSL attention reads f32 K/V only; the CLI maps --kv-dtype auto to f32 on this backend.
    if (options.kvDtype !== undefined && options.kvDtype !== 'f32')
      throw new RangeError(
        `the WebGPU device keeps its KV cache in f32; kvDtype ${options.kvDtype} is not supported`,
      );
    this.blockSize = options.blockSize ?? ENGINE_DEFAULTS.blockSize;
    const kernels = WebGpuKernels.forContext(context);
    this.forward = new WebGpuLlamaForward(kernels, config, weights, options.group);
    // The cache holds this shard's layers and KV heads only, sized as the CPU device's is.
    const { layers, kvHeads } = weights.shard;
    const cacheConfig = {
      ...config,
      numLayers: layers.end - layers.start,
      numKvHeads: kvHeads.end - kvHeads.start,
    };
    this.numKvBlocks = numKvBlocksFor(
      cacheConfig,
      this.blockSize,
      options.kvCacheBytes ?? ENGINE_DEFAULTS.kvCacheBytes,
      context.device.limits.maxStorageBufferBindingSize,
    );
    this.cache = new GpuKvCache(kernels, cacheConfig, this.numKvBlocks, this.blockSize);
    const writeBackSubmits = context.isSoftwareAdapter
      ? SOFTWARE_ADAPTER_WRITE_BACK_SUBMITS
      : WRITE_BACK_SUBMITS_PER_STEP;
    this.kvSwapTarget = new GpuKvSwap(kernels, this.cache, writeBackSubmits);
    this.kvCacheBytes = this.numKvBlocks * bytesPerBlock(cacheConfig, this.blockSize);
    this.shard = weights.shard;
    this.weightBytes = weights.numBytes;
    this.sampler = new StepSampler(config.vocabSize);
  }

  /**
   * onLayerKvWritten: the step's write-backs (kvSwapTarget.startLayerWriteBacks), called as each
   * layer is encoded so its copies go out while later layers compute.
   */
  async executeStage(
    step: StepBatch,
    inputHidden?: Float32Array,
    onLayerKvWritten?: AfterLayerHook,
  ): Promise<StageOutput> {
    // The worker's kv-store swapper has done the step's swaps (through kvSwapTarget) and removed them.
    if (step.swapOuts?.length || step.swapIns?.length || step.kvWriteBacks?.length || step.prefetches?.length)
      throw new Error(
        `step ${step.stepId} still carries KV transfers: the WebGPU device moves KV only through a kv-store`,
      );
    this.sampler.update(step);
    checkStepTokenIds(step, this.config.vocabSize);
    const batch = buildForwardBatch(step.seqs, this.blockSize, this.numKvBlocks);
    if (!this.shard.isLastStage)
      return { hidden: await this.forward.run(batch, this.cache, inputHidden, onLayerKvWritten) };
    // A shard (TP ranks, a last PP stage) samples on the host from the gathered logits, as the CPU does.
    const isWholeModel = this.shard.tp === 1 && this.shard.pp === 1;
    if (!isWholeModel)
      return this.sampler.sample(
        step,
        await this.forward.run(batch, this.cache, inputHidden, onLayerKvWritten),
      );
    if (!this.sampler.needsLogits(step)) {
      return this.sampler.fromGreedyIds(
        step,
        await this.forward.runGreedy(batch, this.cache, onLayerKvWritten),
      );
    }
    const plan = candidatesPlan(step, this.sampler, this.config.vocabSize);
    if (plan !== null) {
      return await sampleFromCandidates(step, this.sampler, plan, this.config.vocabSize, (p, rowsToRead) =>
        this.forward.runCandidates(batch, this.cache, p, rowsToRead, onLayerKvWritten),
      );
    }
    return this.sampler.sample(step, await this.forward.run(batch, this.cache, undefined, onLayerKvWritten));
  }

  sequenceSampling(): Map<number, SequenceSampling> {
    return this.sampler.snapshot();
  }

  restoreSequenceSampling(snapshot: ReadonlyMap<number, SequenceSampling>): void {
    this.sampler.restore(snapshot);
  }

  close(): void {
    this.sampler.clear();
    this.cache.destroy();
    this.forward.destroy();
  }
}

/** The worker's one GPU device, opened on first use (every shard it loads or re-shards to shares it). */
let opened: Promise<GpuContext> | null = null;

function workerGpu(): Promise<GpuContext> {
  opened ??= openGpu().then((result) => {
    if (!result.ok) throw new Error(`--backend webgpu: ${result.reason}`);
    return result.context;
  });
  return opened;
}

/** The WebGPU backend for DeviceWorkerRuntime.start. */
export const webGpuStepDevice: StepDeviceFactory = async (config, weights, options) =>
  new WebGpuDevice(await workerGpu(), config, weights, options);
