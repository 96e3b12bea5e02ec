/**
 * The host agent (`seesaw worker`): joins a coordinator daemon over WebSocket, announces its
 * host name, device count and peer-link address, and starts the device workers the coordinator
 * places here, each relayed to the coordinator over its own WebSocket (DeviceRelay). A replica
 * inside this host keeps its TP groups in shared memory and its PP links as MessagePorts; the
 * devices of a replica spanning hosts get, for each TP peer or PP neighbour on another host, a
 * MessagePort relayed to that host's agent over a peer WebSocket (peer-links.ts), and a TP group
 * spanning hosts is handed ports to all its peers instead of shared memory. A Seesaw replica
 * (spawnReplica with decodeLayout) is wired for both layouts the same way, plus a weight-slice
 * mesh (agent-replica-wiring.ts, replica-peer-linker.ts). Heartbeats both ways on the control
 * link; a coordinator that stays silent past the deadline ends the agent.
 */

import { freemem } from 'node:os';
import { Checkpoint, loadModelConfig } from '@seesaw/model';
import {
  type CoordinatorToHostAgent,
  connectAndHello,
  connectWebSocket,
  type DeviceWorkerData,
  type HostAgentToCoordinator,
  INBOUND_TAGS,
  type SpawnHostKv,
  type SpawnReplica,
  type WebSocketEndpoint,
} from '@seesaw/protocol';
import { chooseHostWeightCache } from '../cluster/host-weight-cache-choice.ts';
import { LocalHostKv } from '../cluster/local-host-kv.ts';
import { wireAgentReplica } from './agent-replica-wiring.ts';
import { DeviceRelay } from './device-relay.ts';
import { AgentPeerLinks, localAddressToward } from './peer-links.ts';
import { remoteDeviceName } from './remote-replicas.ts';
import { wireReplicaKvStores } from './replica-kv-stores.ts';
import { ReplicaPeerLinker } from './replica-peer-linker.ts';

export const DEFAULT_AGENT_HEARTBEAT_INTERVAL_MS = 1000;
export const DEFAULT_AGENT_HEARTBEAT_TIMEOUT_MS = 5000;

export interface HostAgentOptions {
  /** ws://HOST:PORT (wss:// with TLS) of the coordinator daemon. */
  coordinatorUrl: string;
  token: string;
  /**
   * TLS: `ca` (PEM) verifies the coordinator and peer agents on wss://; `cert` and `key` make the
   * peer-link listener speak TLS only (peers then dial wss://).
   */
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer };
  hostName: string;
  numDevices: number;
  /** gpu-actor's device worker entry (deviceWorkerUrl()). */
  workerUrl: URL | string;
  /** gpu-actor's createDeviceWorkerGroup: shared-memory descriptors of one TP group. */
  createTpGroup: (size: number) => unknown[];
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  log?: (line: string) => void;
  /**
   * Where to accept links from peer agents (replicas spanning hosts): host defaults to the local
   * address used to reach the coordinator, port to 0 (any free one). false: no peer links, so
   * this host only takes whole replicas.
   */
  peerListen?: { host?: string; port?: number } | false;
}

/** How long a spawn waits for a peer agent to dial one of its cross-host links. */
const PEER_LINK_TIMEOUT_MS = 60_000;

async function listenForPeers(
  options: HostAgentOptions,
  log: (line: string) => void,
): Promise<AgentPeerLinks | undefined> {
  if (options.peerListen === false) return undefined;
  const listenHost = options.peerListen?.host;
  const isWildcard = listenHost === '0.0.0.0' || listenHost === '::';
  // Peers reach us where the coordinator does: the interface of our route to it.
  const advertiseHost =
    listenHost === undefined || isWildcard ? await localAddressToward(options.coordinatorUrl) : listenHost;
  return AgentPeerLinks.listen({
    host: listenHost ?? advertiseHost,
    advertiseHost,
    port: options.peerListen?.port ?? 0,
    token: options.token,
    tls: options.tls,
    log,
  });
}

export class HostAgent {
  private readonly relaysByJob = new Map<number, DeviceRelay[]>();
  /** Ends the peer-link relays of each job. */
  private readonly stoppersByJob = new Map<number, Array<() => void>>();
  /** Each job's kv-store on this host (host KV tier), shared by all its device workers here. */
  private readonly hostKvByJob = new Map<number, Promise<LocalHostKv>>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private lastHeardMs = Date.now();
  private numHeartbeats = 0;
  /** Resolves with the reason once the control link is gone (the agent is then stopped). */
  readonly closed: Promise<string>;

  private constructor(
    private readonly options: HostAgentOptions,
    private readonly link: WebSocketEndpoint<HostAgentToCoordinator, CoordinatorToHostAgent>,
    private readonly log: (line: string) => void,
    /** Links to other agents for replicas that span hosts (absent with peerListen false). */
    private readonly peers: AgentPeerLinks | undefined,
  ) {
    this.closed = new Promise((resolve) =>
      link.onClose((reason) => {
        void this.stopAll().then(() => resolve(reason));
      }),
    );
  }

  /** Connects, says hello (rejects when refused) and joins. */
  static async start(options: HostAgentOptions): Promise<HostAgent> {
    const log = options.log ?? ((line: string) => console.error(line));
    const link = await connectWebSocket<HostAgentToCoordinator, CoordinatorToHostAgent>(
      options.coordinatorUrl,
      { accept: INBOUND_TAGS.coordinatorToHostAgent, log, tlsCa: options.tls?.ca },
    );
    let peers: AgentPeerLinks | undefined;
    try {
      await connectAndHello(link, {
        role: 'device',
        name: `agent ${options.hostName}`,
        token: options.token,
      });
      peers = await listenForPeers(options, log);
    } catch (error) {
      link.close('agent start failed');
      throw error;
    }
    const agent = new HostAgent(options, link, log, peers);
    link.onMessage((message) => agent.receive(message));
    link.post({
      tag: 'agentJoin',
      hostName: options.hostName,
      numDevices: options.numDevices,
      ...(peers ? { peerUrl: peers.url } : {}),
    });
    agent.startHeartbeats();
    log(
      `agent ${options.hostName}: joined ${options.coordinatorUrl} with ${options.numDevices} devices` +
        (peers ? `, peer links at ${peers.url}` : ''),
    );
    return agent;
  }

  /** Device workers running now. */
  get numRunningDevices(): number {
    let total = 0;
    for (const relays of this.relaysByJob.values()) total += relays.length;
    return total;
  }

  async close(reason = 'agent closed'): Promise<void> {
    this.link.close(reason);
    await this.closed;
  }

  private receive(message: CoordinatorToHostAgent): void {
    this.lastHeardMs = Date.now();
    switch (message.tag) {
      case 'spawnReplica':
        this.spawnReplica(message).catch((error: unknown) => {
          const text = error instanceof Error ? error.message : String(error);
          this.log(`agent ${this.options.hostName}: job ${message.jobId}: ${text}`);
          this.link.post({ tag: 'agentJobError', jobId: message.jobId, message: text.slice(0, 4096) });
          void this.releaseJob(message.jobId);
        });
        return;
      case 'releaseJob':
        void this.releaseJob(message.jobId);
        return;
      case 'shutdown':
        this.link.close(`coordinator asked to shut down (${message.mode})`);
        return;
      case 'protocolError':
        this.log(`agent ${this.options.hostName}: coordinator rejected a frame: ${message.message}`);
        return;
      default:
        return;
    }
  }

  /**
   * Whether this host's devices of a Seesaw replica keep both layouts' shards in host memory
   * (so their host-route pieces are memory copies): as the job says, else when this host's share
   * of the cache fits in half its free memory (a line says so when it does not).
   */
  private keepsHostWeightCache(spec: SpawnReplica, shareOfReplica: number): boolean {
    if (!spec.decodeLayout || !spec.hostKv) return false;
    const weightBytes = Checkpoint.tensorBytesOf(spec.hostKv.modelDir) * shareOfReplica;
    const choice = chooseHostWeightCache(spec.hostWeightCache, weightBytes, freemem());
    if (choice.why) this.log(`agent ${this.options.hostName}: job ${spec.jobId}: ${choice.why}`);
    return choice.isOn;
  }

  private async spawnReplica(spec: SpawnReplica): Promise<void> {
    const { tp, pp, firstDevice, dpRank, jobId } = spec;
    // Awaited first: everything below, up to the workers' connects, runs without yielding.
    const hostKv = spec.hostKv && (await this.hostKvFor(jobId, spec.hostKv, spec.deviceToken));
    const perReplica = tp * pp;
    const here = new Set(spec.devices ?? Array.from({ length: perReplica }, (_, local) => local));
    const hostUrls = spec.hostUrls;
    if ([...here].some((local) => local >= perReplica) || (spec.devices && hostUrls?.length !== perReplica)) {
      throw new Error(`spawnReplica: devices or hostUrls do not fit a replica of ${perReplica} devices`);
    }
    const layouts = spec.decodeLayout ? [{ tp, pp }, spec.decodeLayout] : [{ tp, pp }];
    if (layouts.some((layout) => layout.tp * layout.pp !== perReplica)) {
      throw new Error(
        `spawnReplica: decode layout T${spec.decodeLayout?.tp}P${spec.decodeLayout?.pp} must have ${perReplica} devices`,
      );
    }
    if (this.numRunningDevices + here.size > this.options.numDevices) {
      throw new Error(
        `${this.options.hostName} has ${this.options.numDevices - this.numRunningDevices} free devices, replica needs ${here.size}`,
      );
    }
    const stoppers = this.stoppersByJob.get(jobId) ?? [];
    this.stoppersByJob.set(jobId, stoppers);
    const linker = new ReplicaPeerLinker({
      peers: this.peers,
      jobId,
      firstDevice,
      hostUrls,
      here,
      stoppers,
      timeoutMs: PEER_LINK_TIMEOUT_MS,
    });
    const wiring = wireAgentReplica(
      layouts,
      (local) => here.has(local),
      (a, b) => linker.link(a, b),
      this.options.createTpGroup,
    );
    const { links } = wiring;
    if (hostKv) {
      const { numLayers, numKvHeads } = loadModelConfig(spec.hostKv!.modelDir);
      wireReplicaKvStores({ hostKv, linker, here, links, hostUrls, layouts, numLayers, numKvHeads });
    }
    const relays = this.relaysByJob.get(jobId) ?? [];
    this.relaysByJob.set(jobId, relays);
    const hostWeightCache = this.keepsHostWeightCache(spec, here.size / perReplica);
    const specs = [];
    for (const local of [...here].sort((x, y) => x - y)) {
      const device = firstDevice + local;
      const workerData: DeviceWorkerData = {
        token: spec.deviceToken,
        deviceName: remoteDeviceName(device, { dp: dpRank + 1, tp, pp }, this.options.hostName),
      };
      const [group, ...rest] = wiring.groups[local]!;
      if (group !== undefined) workerData.group = group;
      if (spec.decodeLayout && rest.some((g) => g !== undefined)) workerData.layoutGroups = [group, ...rest];
      if (hostWeightCache) workerData.hostWeightCache = true;
      const relaySpec = {
        workerUrl: this.options.workerUrl,
        coordinatorUrl: this.options.coordinatorUrl,
        tlsCa: this.options.tls?.ca,
        clusterToken: this.options.token,
        jobId,
        device,
        workerData,
        links: links[local]!,
        log: this.log,
      };
      const relay = DeviceRelay.spawn(relaySpec);
      relays.push(relay);
      specs.push({ relay, relaySpec });
    }
    await Promise.all([...linker.tasks, ...specs.map(({ relay, relaySpec }) => relay.connect(relaySpec))]);
  }

  /**
   * The job's kv-store here, started by its first replica on this host. Its token is the job's
   * device token: the device workers' hellos to the store carry that.
   */
  private hostKvFor(jobId: number, hostKv: SpawnHostKv, deviceToken: string): Promise<LocalHostKv> {
    let started = this.hostKvByJob.get(jobId);
    if (!started) {
      started = LocalHostKv.start({
        config: loadModelConfig(hostKv.modelDir),
        blockSize: hostKv.blockSize,
        kvDtype: hostKv.kvDtype,
        capacityBytes: hostKv.capacityBytes,
        numEngines: hostKv.numEngines,
        token: deviceToken,
        log: this.log,
      });
      this.hostKvByJob.set(jobId, started);
    }
    return started;
  }

  private async releaseJob(jobId: number): Promise<void> {
    const relays = this.relaysByJob.get(jobId) ?? [];
    this.relaysByJob.delete(jobId);
    for (const stop of this.stoppersByJob.get(jobId) ?? []) stop();
    this.stoppersByJob.delete(jobId);
    this.peers?.forgetJob(jobId);
    await Promise.all(relays.map((relay) => relay.stop()));
    const hostKv = this.hostKvByJob.get(jobId);
    this.hostKvByJob.delete(jobId);
    // A store that failed to start was already reported with the spawn that started it.
    await hostKv?.then((store) => store.close()).catch(() => {});
  }

  private async stopAll(): Promise<void> {
    clearInterval(this.heartbeatTimer);
    await Promise.all([...this.relaysByJob.keys()].map((jobId) => this.releaseJob(jobId)));
    await this.peers?.close();
  }

  private startHeartbeats(): void {
    const interval = this.options.heartbeatIntervalMs ?? DEFAULT_AGENT_HEARTBEAT_INTERVAL_MS;
    const timeout = this.options.heartbeatTimeoutMs ?? DEFAULT_AGENT_HEARTBEAT_TIMEOUT_MS;
    this.lastHeardMs = Date.now();
    this.heartbeatTimer = setInterval(() => {
      const silentMs = Date.now() - this.lastHeardMs;
      if (silentMs > timeout) {
        this.link.close(`coordinator silent for ${silentMs} ms (deadline ${timeout} ms)`);
        return;
      }
      this.link.post({ tag: 'heartbeat', seq: this.numHeartbeats++, sentAtMs: Date.now() });
    }, interval);
  }
}
