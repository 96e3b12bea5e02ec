export { BlockAllocator } from './block-allocator.ts';
export * from './cluster/index.ts';
export {
  DEFAULT_WATERMARK,
  Engine,
  type EngineOptions,
  type EngineStats,
  type ExecutionDevice,
} from './engine.ts';
export {
  EngineCore,
  type EngineCoreOptions,
  type EngineCoreStats,
  type ReplicaExecutor,
} from './engine-core.ts';
export type { StepTimeStats } from './engine-core-stats.ts';
export {
  HostKvTier,
  type HostKvTierConfig,
  type PreemptionSettings,
  preemptionModeOf,
} from './host-kv-tier.ts';
export {
  DEFAULT_COMPUTE_FLOPS_PER_SECOND,
  DEFAULT_HOST_COPY_BYTES_PER_SECOND,
  DEFAULT_SWAP_LATENCY_SECONDS,
  type PreemptionMode,
  recomputeSeconds,
  type SwapCostModel,
  shouldSwap,
  swapSeconds,
} from './preemption-policy.ts';
export * from './remote/index.ts';
export { ReplicaCluster, type ReplicaClusterOptions, type ReplicaEngine } from './replica-cluster.ts';
export {
  type EngineRequest,
  type FinishReason,
  type RequestOutput,
  RequestRejectedError,
} from './request.ts';
export { DEFAULT_SAMPLING, randomSeed, type SamplingParams } from './sampling-params.ts';
export { Scheduler, type SchedulerConfig } from './scheduler.ts';
export type { SchedulerCounters } from './scheduler-counters.ts';
export { SeesawClusterEngine, type SeesawClusterEngineOptions } from './seesaw-cluster-engine.ts';
export {
  type PhasedDevice,
  type ReshardDeviceStats,
  type ReshardStats,
  SeesawEngine,
  type SeesawEngineOptions,
  type SeesawEngineStats,
} from './seesaw-engine.ts';
export {
  DEFAULT_SEESAW_HOST_LOW_MARK,
  DEFAULT_SEESAW_PREFILL_TOKEN_BUDGET,
  DEFAULT_SEESAW_WATERMARK,
  SeesawScheduler,
  type SeesawSchedulerConfig,
} from './seesaw-scheduler.ts';
export type { ScheduledChunk, StepPlan } from './step-plan.ts';
export type { EnterPhaseOptions, Phase, StepScheduler } from './step-scheduler.ts';
export { type TraceCategory, type TraceEvent, TraceRecorder } from './trace-recorder.ts';
