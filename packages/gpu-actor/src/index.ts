export { CpuDevice, type CpuDeviceOptions, type StageOutput } from './cpu-device.ts';
export type { StepWriteBacks } from './device-kv-store-swap.ts';
export {
  createDeviceWorkerGroup,
  DEVICE_GROUP_CAPACITY_FLOATS,
  type DeviceWorkerData,
  type DeviceWorkerLinks,
  deviceWorkerUrl,
} from './device-worker-data.ts';
export { DeviceOutOfMemoryError, kvCacheBudget, shardWeightBytes } from './device-worker-memory.ts';
export { DeviceWorkerRuntime } from './device-worker-runtime.ts';
export { buildForwardBatch, type ForwardBatch } from './forward-batch.ts';
export { type HeldSlice, HeldWeights } from './held-weights.ts';
export { InProcessGroup } from './in-process-group.ts';
export { InProcessPipeline, type InProcessPipelineOptions } from './in-process-pipeline.ts';
export { type KvStoreCopyRate, measureKvStoreCopyRate } from './kv-store-copy-rate.ts';
export {
  checkpointSliceSource,
  type LayerWeights,
  loadModelWeights,
  type ModelWeights,
  ModelWeightsBuilder,
  type WeightSliceSource,
} from './model-weights.ts';
export { executeReshard, type ReshardIo, type ReshardOutcome } from './reshard-executor.ts';
export { ropeTables } from './rope-table.ts';
export { samplingUniform } from './sampling-rng.ts';
export {
  createSharedMemoryGroup,
  SharedMemoryGroup,
  type SharedMemoryGroupDescriptor,
  sharedMemoryGroupBytes,
} from './shared-memory-group.ts';
export {
  cpuStepDevice,
  type KvBlockCopier,
  type StepDevice,
  type StepDeviceFactory,
  type StepDeviceOptions,
} from './step-device.ts';
export { checkKvSwap, type LayerKvPut, type WriteBackTimings } from './step-kv-write-backs.ts';
export { checkStepTokenIds, type SequenceSampling, StepSampler } from './step-sampler.ts';
export { sumByHalvingTree, type TensorParallelGroup } from './tensor-parallel-group.ts';
