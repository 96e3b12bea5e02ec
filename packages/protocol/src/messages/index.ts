/**
 * The tag registry: every tag of every direction, mapped to its schema. Tags are unique
 * across the protocol, so a frame's tag alone says how to check it.
 */

import { type CommonMessage, commonSchemas } from './common.ts';
import {
  type CoordinatorToDevice,
  coordinatorToDeviceSchemas,
  type DeviceToCoordinator,
  deviceToCoordinatorSchemas,
} from './coordinator-device.ts';
import {
  type CoordinatorToKvStore,
  coordinatorToKvStoreSchemas,
  type KvStoreToCoordinator,
  kvStoreToCoordinatorSchemas,
} from './coordinator-kv-store.ts';
import { type DeviceToDevice, deviceToDeviceSchemas } from './device-device.ts';
import {
  type DeviceToKvStore,
  deviceToKvStoreSchemas,
  type KvStoreToDevice,
  kvStoreToDeviceSchemas,
} from './device-kv-store.ts';
import {
  type CoordinatorToHostAgent,
  coordinatorToHostAgentSchemas,
  type HostAgentToCoordinator,
  hostAgentToCoordinatorSchemas,
} from './host-agent.ts';
import {
  type CoordinatorToJobClient,
  coordinatorToJobClientSchemas,
  type JobClientToCoordinator,
  jobClientToCoordinatorSchemas,
} from './job-client.ts';
import type { MessageSchema } from './schema.ts';

/** Any message of any direction. */
export type Message =
  | CommonMessage
  | CoordinatorToDevice
  | DeviceToCoordinator
  | CoordinatorToKvStore
  | KvStoreToCoordinator
  | DeviceToDevice
  | DeviceToKvStore
  | KvStoreToDevice
  | HostAgentToCoordinator
  | CoordinatorToHostAgent
  | JobClientToCoordinator
  | CoordinatorToJobClient;

export type MessageTag = Message['tag'];

function buildRegistry(parts: Record<string, MessageSchema>[]): ReadonlyMap<string, MessageSchema> {
  const registry = new Map<string, MessageSchema>();
  for (const part of parts) {
    for (const [tag, schema] of Object.entries(part)) {
      if (registry.has(tag)) throw new Error(`protocol: tag ${tag} defined twice`);
      registry.set(tag, schema);
    }
  }
  return registry;
}

export const MESSAGE_SCHEMAS: ReadonlyMap<string, MessageSchema> = buildRegistry([
  commonSchemas,
  coordinatorToDeviceSchemas,
  deviceToCoordinatorSchemas,
  coordinatorToKvStoreSchemas,
  kvStoreToCoordinatorSchemas,
  deviceToDeviceSchemas,
  deviceToKvStoreSchemas,
  kvStoreToDeviceSchemas,
  hostAgentToCoordinatorSchemas,
  coordinatorToHostAgentSchemas,
  jobClientToCoordinatorSchemas,
  coordinatorToJobClientSchemas,
]);

/**
 * Tags each receiver accepts, per direction (a receiver rejects a valid tag meant for
 * another link as 'unexpected'). Written as records so the compiler insists that every
 * tag of each union is listed.
 */
export const INBOUND_TAGS = {
  coordinatorToDevice: tagSet<CoordinatorToDevice['tag']>({
    hello: true,
    loadShard: true,
    step: true,
    swapOut: true,
    swapIn: true,
    reshard: true,
    clockProbe: true,
    heartbeat: true,
    shutdown: true,
    protocolError: true,
  }),
  deviceToCoordinator: tagSet<DeviceToCoordinator['tag']>({
    welcome: true,
    refused: true,
    ready: true,
    stepDone: true,
    stepKv: true,
    clockReply: true,
    swapDone: true,
    reshardDone: true,
    heartbeat: true,
    error: true,
    protocolError: true,
  }),
  coordinatorToKvStore: tagSet<CoordinatorToKvStore['tag']>({
    hello: true,
    reserve: true,
    release: true,
    capacityQuery: true,
    heartbeat: true,
    shutdown: true,
    protocolError: true,
  }),
  kvStoreToCoordinator: tagSet<KvStoreToCoordinator['tag']>({
    welcome: true,
    refused: true,
    reserved: true,
    reserveFailed: true,
    capacity: true,
    heartbeat: true,
    protocolError: true,
  }),
  deviceToDevice: tagSet<DeviceToDevice['tag']>({
    hello: true,
    welcome: true,
    refused: true,
    allReduceChunk: true,
    activations: true,
    weightSlice: true,
    weightSliceTaken: true,
    heartbeat: true,
    protocolError: true,
  }),
  deviceToKvStore: tagSet<DeviceToKvStore['tag']>({
    hello: true,
    kvPut: true,
    kvGet: true,
    kvCacheShare: true,
    kvCopyOut: true,
    kvCopyIn: true,
    heartbeat: true,
    protocolError: true,
  }),
  kvStoreToDevice: tagSet<KvStoreToDevice['tag']>({
    welcome: true,
    refused: true,
    kvData: true,
    kvPutDone: true,
    kvCacheShared: true,
    kvCopyDone: true,
    kvError: true,
    heartbeat: true,
    protocolError: true,
  }),
  hostAgentToCoordinator: tagSet<HostAgentToCoordinator['tag']>({
    hello: true,
    agentJoin: true,
    deviceChannel: true,
    agentJobError: true,
    heartbeat: true,
    protocolError: true,
  }),
  coordinatorToHostAgent: tagSet<CoordinatorToHostAgent['tag']>({
    welcome: true,
    refused: true,
    spawnReplica: true,
    releaseJob: true,
    heartbeat: true,
    shutdown: true,
    protocolError: true,
  }),
  jobClientToCoordinator: tagSet<JobClientToCoordinator['tag']>({
    hello: true,
    openJob: true,
    submitRequests: true,
    stopRequests: true,
    heartbeat: true,
    protocolError: true,
  }),
  coordinatorToJobClient: tagSet<CoordinatorToJobClient['tag']>({
    welcome: true,
    refused: true,
    jobReady: true,
    requestFinished: true,
    requestProgress: true,
    requestRejected: true,
    jobFailed: true,
    heartbeat: true,
    protocolError: true,
  }),
} as const;

function tagSet<T extends string>(tags: Record<T, true>): ReadonlySet<string> {
  return new Set<string>(Object.keys(tags));
}
