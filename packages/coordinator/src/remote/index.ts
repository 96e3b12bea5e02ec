export { type ClusterGauges, ClusterMetrics, type CounterName } from './cluster-metrics.ts';
export {
  CoordinatorDaemon,
  type CoordinatorDaemonOptions,
  type CoordinatorHealth,
} from './coordinator-daemon.ts';
export {
  DEFAULT_AGENT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_AGENT_HEARTBEAT_TIMEOUT_MS,
  HostAgent,
  type HostAgentOptions,
} from './host-agent.ts';
export {
  type RejectedRequest,
  RemoteJobClient,
  RemoteJobError,
  type RemoteJobOptions,
} from './job-client.ts';
export { AgentPeerLinks, relayPortToSocket } from './peer-links.ts';
export { type HostCapacity, placeDevices, placeReplicas } from './replica-placement.ts';
