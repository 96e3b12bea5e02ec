export { ClusterEngine, type ClusterEngineOptions } from './cluster-engine.ts';
export {
  type AttachDeviceOptions,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  DeviceActorHandle,
  type DeviceActorOptions,
} from './device-actor-handle.ts';
export { DeviceLostError, DeviceStepError } from './device-errors.ts';
export { type HostSlotPartition, KvPartitionView, partitionReplica } from './kv-partition-view.ts';
export { LocalCluster, type LocalClusterOptions } from './local-cluster.ts';
export {
  type EngineHostKv,
  engineHostKvFor,
  LocalHostKv,
  type LocalHostKvOptions,
} from './local-host-kv.ts';
export {
  RecoveringCluster,
  type RecoveringClusterOptions,
  type ReplanEvent,
} from './recovering-cluster.ts';
export { ClusterStoppedError, ReplicasLostError } from './recovery-errors.ts';
export { type ReplanOptions, replanConfig } from './replan.ts';
export { ReplicaDevice } from './replica-device.ts';
export type { DeviceWorkerLinkPorts, DeviceWorkerSpawnData } from './worker-contract.ts';
