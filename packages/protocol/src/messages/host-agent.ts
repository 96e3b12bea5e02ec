/**
 * Coordinator <-> host agent messages. A host agent (`seesaw worker`) holds a control link to
 * the coordinator daemon, announces its devices, and on request spawns the device workers of one
 * DP replica; each device then gets its own WebSocket to the coordinator (opened by the agent,
 * first message deviceChannel) over which the agent relays coordinator<->device frames unchanged.
 * Hellos use role 'device' for both link kinds: the first message after welcome says which.
 */

import { arrayOf, count, int, object, oneOf, str } from '../check.ts';
import type { KvCacheDType } from '../engine-config.ts';
import type { Heartbeat, Hello, ProtocolError, Refused, Shutdown, Welcome } from './common.ts';
import { type MessageSchema, noTensors, schema } from './schema.ts';

/** First message of an agent's control link: who the host is and what it offers. */
export interface AgentJoin {
  tag: 'agentJoin';
  /** Host name, unique in the cluster (logs, metrics, error messages). */
  hostName: string;
  /** Device workers this host can run at once. */
  numDevices: number;
  /**
   * ws://HOST:PORT where this agent accepts links from peer agents (a replica that spans
   * hosts); absent: the host only takes whole replicas.
   */
  peerUrl?: string;
}

/**
 * First message of a per-device link: from now on the link carries the coordinator<->device
 * protocol of device `device` of job `jobId`, starting with the coordinator's hello.
 */
export interface DeviceChannel {
  tag: 'deviceChannel';
  jobId: number;
  /** Global device index of the job's layout. */
  device: number;
  /**
   * Only on a link between two host agents (a replica spanning hosts): the link joins the
   * dialing agent's `device` to the accepting agent's `peerDevice` (a TP peer or a PP
   * neighbour), and then carries that device<->device protocol unchanged.
   */
  peerDevice?: number;
  /**
   * Only on a link between two host agents: which of the links joining this pair of devices it
   * is, in the order both agents wire them (a Seesaw replica joins a pair up to five ways: each
   * layout's pipeline or TP link, the weight-slice mesh, the relayed kv-store link). Absent: 0.
   */
  linkIndex?: number;
}

/** The agent could not start a replica's devices (spawn failed, unknown job...). */
export interface AgentJobError {
  tag: 'agentJobError';
  jobId: number;
  message: string;
}

export type HostAgentToCoordinator =
  | Hello
  | AgentJoin
  | DeviceChannel
  | AgentJobError
  | Heartbeat
  | ProtocolError;

/**
 * Start the tp * pp device workers of one DP replica on this host (or, with `devices`, this
 * host's share of a replica spanning hosts): device indices firstDevice + ppStage * tp + tpRank,
 * TP groups in shared memory per stage, PP links between stages as MessagePorts (links to
 * devices on other hosts relayed agent to agent); then open one deviceChannel per device.
 */
export interface SpawnReplica {
  tag: 'spawnReplica';
  jobId: number;
  dpRank: number;
  firstDevice: number;
  tp: number;
  pp: number;
  /** Secret the device workers demand in the coordinator's hello (per job). */
  deviceToken: string;
  /**
   * A replica spanning hosts: the replica-local indices (ppStage * tp + tpRank) this host runs,
   * and hostUrls[local] the peer address of the host running each of the replica's devices.
   * Links between devices of two hosts go agent to agent (the lower global device dials);
   * absent: the whole replica runs here.
   */
  devices?: number[];
  hostUrls?: string[];
  /**
   * The job's host KV tier: this host runs one kv-store for the job (started with its first
   * replica here, ended by releaseJob) and links each device worker to it. Every host gets the
   * same capacity and engine count, so every engine's slot range exists on every host.
   */
  hostKv?: SpawnHostKv;
  /**
   * A Seesaw replica: its decode layout (layout 1; same tp * pp). The host wires that layout's
   * TP groups and pipeline links and a weight-slice mesh between all the replica's devices too,
   * each across hosts where its ends are; with hostKv, every device swaps through its own
   * host's kv-store, and a replica spanning hosts links its hosts' stores, which forward the KV
   * parts devices elsewhere own under either layout (coordinator remote/replica-kv-stores.ts).
   */
  decodeLayout?: { tp: number; pp: number };
  /**
   * A Seesaw replica's --host-weight-cache: 'on' or 'off' as the job says; absent, the host keeps
   * each of its devices' shards under both layouts in host memory when that fits in half its
   * free RAM (chooseHostWeightCache), and says so when it does not.
   */
  hostWeightCache?: 'on' | 'off';
}

/** What a host needs to lay out its kv-store: the same on every host of a job. */
export interface SpawnHostKv {
  /** Checkpoint directory as the hosts see it (the store's layout comes from its config). */
  modelDir: string;
  /** Tokens per KV block = tokens per host slot. */
  blockSize: number;
  /** Element type of the slots (the devices' KV dtype); absent: f32. */
  kvDtype?: KvCacheDType;
  capacityBytes: number;
  /** Engines of the job (one per DP replica); each owns an equal slot range. */
  numEngines: number;
}

/** The job is over: stop every device worker of it still running. */
export interface ReleaseJob {
  tag: 'releaseJob';
  jobId: number;
}

export type CoordinatorToHostAgent =
  | Welcome
  | Refused
  | SpawnReplica
  | ReleaseJob
  | Heartbeat
  | Shutdown
  | ProtocolError;

const hostName = str(256, /^[A-Za-z0-9._-]+$/);
const parallelDegree = int(1, 4096);
const peerUrl = str(512, /^wss?:\/\/\S+$/);

export const hostAgentToCoordinatorSchemas: Record<
  'agentJoin' | 'deviceChannel' | 'agentJobError',
  MessageSchema
> = {
  agentJoin: schema({ hostName, numDevices: int(0, 4096) }, noTensors, { peerUrl }),
  deviceChannel: schema({ jobId: count, device: count }, noTensors, { peerDevice: count, linkIndex: count }),
  agentJobError: schema({ jobId: count, message: str(4096) }),
};

export const coordinatorToHostAgentSchemas: Record<'spawnReplica' | 'releaseJob', MessageSchema> = {
  spawnReplica: schema(
    {
      jobId: count,
      dpRank: count,
      firstDevice: count,
      tp: parallelDegree,
      pp: parallelDegree,
      deviceToken: str(4096),
    },
    noTensors,
    {
      devices: arrayOf(count, 4096, 1),
      hostUrls: arrayOf(peerUrl, 4096, 1),
      hostKv: object(
        {
          modelDir: str(4096),
          blockSize: int(1, 1 << 20),
          capacityBytes: int(1, Number.MAX_SAFE_INTEGER),
          numEngines: int(1, 1 << 20),
        },
        { kvDtype: oneOf('f32', 'bf16', 'f16') },
      ),
      decodeLayout: object({ tp: parallelDegree, pp: parallelDegree }),
      hostWeightCache: oneOf('on', 'off'),
    },
  ),
  releaseJob: schema({ jobId: count }),
};
