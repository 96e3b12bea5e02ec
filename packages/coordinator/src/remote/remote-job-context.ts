/**
 * What a remote job gets from the coordinator daemon: the links it talks over (its device
 * workers', its client's) and the daemon's shared state and hooks (RemoteJobContext). Kept apart
 * from RemoteJob so that JobDevices, which RemoteJob drives, needs no import of it.
 */
import type {
  CoordinatorToDevice,
  CoordinatorToJobClient,
  DeviceToCoordinator,
  Endpoint,
  JobClientToCoordinator,
} from '@seesaw/protocol';
import type { ClusterMetrics } from './cluster-metrics.ts';
import type { HostRegistry } from './host-registry.ts';

export type DeviceLink = Endpoint<CoordinatorToDevice, DeviceToCoordinator>;
export type JobClientLink = Endpoint<CoordinatorToJobClient, JobClientToCoordinator>;

export interface RemoteJobContext {
  jobId: number;
  registry: HostRegistry;
  metrics: ClusterMetrics;
  /** Resolves with the link an agent opened for (jobId, device). */
  expectDeviceLink: (jobId: number, device: number, timeoutMs: number) => Promise<DeviceLink>;
  cancelDeviceLinks: (jobId: number, reason: string) => void;
  /** A fresh id for the devices of a re-planned job (their agents and links start anew under it). */
  nextDeviceJobId: () => number;
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  log: (line: string) => void;
}
