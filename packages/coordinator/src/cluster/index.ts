export { ClusterEngine, type ClusterEngineOptions } from './cluster-engine.ts';
export {
  type AttachDeviceOptions,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  DeviceActorHandle,
  type DeviceActorOptions,
} from './device-actor-handle.ts';
export { DeviceLostError, DeviceStepError } from './device-errors.ts';
export { formatBytes } from './format-bytes.ts';
export { chooseHostWeightCache } from './host-weight-cache-choice.ts';
export { type LayoutWiring, wireLayout, wireReshardMesh } from './layout-wiring.ts';
export { LocalCluster, type LocalClusterOptions } from './local-cluster.ts';
export {
  type EngineHostKv,
  engineHostKvFor,
  LocalHostKv,
  type LocalHostKvOptions,
} from './local-host-kv.ts';
export {
  createClusterPlanner,
  createPhasedReplicas,
  type PhasedPlannerSetup,
  type PhasedReplicasSetup,
  phasedLayouts,
} from './phased-replicas.ts';
export {
  RecoveringCluster,
  type RecoveringClusterOptions,
  type ReplanEvent,
} from './recovering-cluster.ts';
export {
  RecoveringSeesawCluster,
  type RecoveringSeesawClusterOptions,
} from './recovering-seesaw-cluster.ts';
export { ClusterStoppedError, ReplicasLostError } from './recovery-errors.ts';
export { type ReplanOptions, replanConfig } from './replan.ts';
export type { ReplicaActor } from './replica-actor.ts';
export { ReplicaDevice } from './replica-device.ts';
export type { ReplicaDeviceOptions } from './replica-device-options.ts';
export { type ReplicaHostSlots, withHostSlots } from './replica-host-slots.ts';
export type { ReplicaReshardStats, ReshardPlanner } from './replica-reshard.ts';
export {
  fitLink,
  type LinkRateOptions,
  type MeasuredLink,
  measureFreshPageCopyBytesPerSecond,
  measureHostBytesPerSecond,
  measureHostMemcpyBytesPerSecond,
  measureP2pLink,
  measureReshardLinkRates,
} from './reshard-link-rates.ts';
export {
  checkpointTensorBytes,
  createReshardPlanner,
  DEFAULT_RESHARD_RATES,
  type ReshardPlannerOptions,
} from './reshard-planner.ts';
export { rankedSeesawReplans, type SeesawReplan, type SeesawReplanOptions } from './seesaw-replan.ts';
