/**
 * The seam between a device worker and what computes its steps: the CPU device here, the
 * WebGPU device in @seesaw/webgpu-device. A worker entry module picks the backend by the
 * factory it starts DeviceWorkerRuntime with; loading and re-sharding build every device
 * through that one factory, so the rest of the worker (links, swaps, re-shards, replies) is
 * the same for every backend.
 */

import type { KvLayout } from '@seesaw/kernels';
import type { ModelConfig, ShardSpec } from '@seesaw/model';
import type { StepBatch, StepKvSwap, Tensor } from '@seesaw/protocol';
import { CpuDevice, type CpuDeviceOptions, type StageOutput } from './cpu-device.ts';
import type { StepWriteBacks } from './device-kv-store-swap.ts';
import type { ModelWeights } from './model-weights.ts';
import type { PagedKvCache } from './paged-kv-cache.ts';
import type { LayerKvPut } from './step-kv-write-backs.ts';
import type { SequenceSampling } from './step-sampler.ts';

/**
 * Copies one sequence's K/V between a cache that is not host memory and the head-major tensor
 * [layers, 2, kvHeads, numTokens, headDim] f32 that the kv-store holds (gatherSwapKv's layout).
 */
export interface KvBlockCopier {
  readonly layout: KvLayout;
  readonly numBlocks: number;
  gather(swap: StepKvSwap): Promise<Tensor>;
  /** Lands before any later step's compute reads the blocks. */
  scatter(swap: StepKvSwap, tensor: Tensor): void;
  /**
   * A step's write-backs layer by layer, overlapped with its compute, where the copier can
   * (StepKvWriteBacks' contract: the device calls onLayerKvWritten(local layer) once that
   * layer's K/V of the step is written or encoded, `put` posts one layer of one sequence, as
   * [1, 2, kvHeads, numTokens, headDim], and finish() waits for every acknowledgement). Without
   * it the swapper writes every layer back at once after the compute.
   */
  startLayerWriteBacks?(swaps: readonly StepKvSwap[], put: LayerKvPut): StepWriteBacks;
}

/** What a device worker needs of the device that runs its shard. */
export interface StepDevice {
  readonly config: ModelConfig;
  readonly shard: ShardSpec;
  readonly blockSize: number;
  readonly numKvBlocks: number;
  readonly weightBytes: number;
  readonly kvCacheBytes: number;
  /**
   * What the kv-store swapper copies a sequence's blocks out of and into: the KV cache itself
   * when it is in host memory, or a copier over a cache elsewhere (a GPU's, through staging
   * buffers), through which swaps, write-backs and prefetches go.
   */
  readonly kvSwapTarget: PagedKvCache | KvBlockCopier;
  /** Runs this device's stage of a step (CpuDevice.executeStage's contract). */
  executeStage(
    step: StepBatch,
    inputHidden?: Float32Array,
    onLayerKvWritten?: (layer: number) => void,
  ): Promise<StageOutput>;
  sequenceSampling(): Map<number, SequenceSampling>;
  restoreSequenceSampling(snapshot: ReadonlyMap<number, SequenceSampling>): void;
  /** Frees what the device holds (GPU buffers, sampling state); the device is unusable after. */
  close(): void;
}

/** kvArena: a backend whose KV cache is host memory may view it from there (others ignore it). */
export type StepDeviceOptions = Pick<
  CpuDeviceOptions,
  'numThreads' | 'kvCacheBytes' | 'blockSize' | 'kvDtype' | 'group' | 'kvArena'
>;

/** Builds a worker's device over weights it loaded or re-sharded. */
export type StepDeviceFactory = (
  config: ModelConfig,
  weights: ModelWeights,
  options: StepDeviceOptions,
) => Promise<StepDevice>;

/** The CPU backend: the device workers' default. */
export const cpuStepDevice: StepDeviceFactory = async (config, weights, options) =>
  CpuDevice.fromWeights(config, weights, options);
