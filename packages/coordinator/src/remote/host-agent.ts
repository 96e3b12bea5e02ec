/**
 * The host agent (`seesaw worker`): joins a coordinator daemon over WebSocket, announces its
 * host name and device count, and starts the device workers of the DP replicas the coordinator
 * places here (TP groups in shared memory and PP links as MessagePorts, so a replica never spans
 * hosts), each relayed to the coordinator over its own WebSocket (DeviceRelay). Heartbeats both
 * ways on the control link; a coordinator that stays silent past the deadline ends the agent.
 */

import { MessageChannel } from 'node:worker_threads';
import {
  type CoordinatorToHostAgent,
  connectAndHello,
  connectWebSocket,
  type HostAgentToCoordinator,
  INBOUND_TAGS,
  type SpawnReplica,
  type WebSocketEndpoint,
} from '@seesaw/protocol';
import type { DeviceWorkerLinkPorts, DeviceWorkerSpawnData } from '../cluster/worker-contract.ts';
import { DeviceRelay } from './device-relay.ts';
import { remoteDeviceName } from './remote-replicas.ts';

export const DEFAULT_AGENT_HEARTBEAT_INTERVAL_MS = 1000;
export const DEFAULT_AGENT_HEARTBEAT_TIMEOUT_MS = 5000;

export interface HostAgentOptions {
  /** ws://HOST:PORT of the coordinator daemon. */
  coordinatorUrl: string;
  token: string;
  hostName: string;
  numDevices: number;
  /** gpu-actor's device worker entry (deviceWorkerUrl()). */
  workerUrl: URL | string;
  /** gpu-actor's createDeviceWorkerGroup: shared-memory descriptors of one TP group. */
  createTpGroup: (size: number) => unknown[];
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  log?: (line: string) => void;
}

export class HostAgent {
  private readonly relaysByJob = new Map<number, DeviceRelay[]>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private lastHeardMs = Date.now();
  private numHeartbeats = 0;
  /** Resolves with the reason once the control link is gone (the agent is then stopped). */
  readonly closed: Promise<string>;

  private constructor(
    private readonly options: HostAgentOptions,
    private readonly link: WebSocketEndpoint<HostAgentToCoordinator, CoordinatorToHostAgent>,
    private readonly log: (line: string) => void,
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
      { accept: INBOUND_TAGS.coordinatorToHostAgent, log },
    );
    await connectAndHello(link, { role: 'device', name: `agent ${options.hostName}`, token: options.token });
    const agent = new HostAgent(options, link, log);
    link.onMessage((message) => agent.receive(message));
    link.post({ tag: 'agentJoin', hostName: options.hostName, numDevices: options.numDevices });
    agent.startHeartbeats();
    log(`agent ${options.hostName}: joined ${options.coordinatorUrl} with ${options.numDevices} devices`);
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

  private async spawnReplica(spec: SpawnReplica): Promise<void> {
    const { tp, pp, firstDevice, dpRank, jobId } = spec;
    if (this.numRunningDevices + tp * pp > this.options.numDevices) {
      throw new Error(
        `${this.options.hostName} has ${this.options.numDevices - this.numRunningDevices} free devices, replica needs ${tp * pp}`,
      );
    }
    const links: DeviceWorkerLinkPorts[] = Array.from({ length: tp * pp }, () => ({}));
    for (let stage = 0; stage + 1 < pp; stage++) {
      for (let tpRank = 0; tpRank < tp; tpRank++) {
        const { port1, port2 } = new MessageChannel();
        links[stage * tp + tpRank].next = port1;
        links[(stage + 1) * tp + tpRank].previous = port2;
      }
    }
    const relays = this.relaysByJob.get(jobId) ?? [];
    this.relaysByJob.set(jobId, relays);
    const specs = [];
    for (let stage = 0; stage < pp; stage++) {
      const group = tp > 1 ? this.options.createTpGroup(tp) : undefined;
      for (let tpRank = 0; tpRank < tp; tpRank++) {
        const local = stage * tp + tpRank;
        const device = firstDevice + local;
        const workerData: DeviceWorkerSpawnData = {
          token: spec.deviceToken,
          deviceName: remoteDeviceName(device, { dp: dpRank + 1, tp, pp }, this.options.hostName),
        };
        if (group) workerData.group = group[tpRank];
        const relaySpec = {
          workerUrl: this.options.workerUrl,
          coordinatorUrl: this.options.coordinatorUrl,
          clusterToken: this.options.token,
          jobId,
          device,
          workerData,
          links: links[local],
          log: this.log,
        };
        const relay = DeviceRelay.spawn(relaySpec);
        relays.push(relay);
        specs.push({ relay, relaySpec });
      }
    }
    await Promise.all(specs.map(({ relay, relaySpec }) => relay.connect(relaySpec)));
  }

  private async releaseJob(jobId: number): Promise<void> {
    const relays = this.relaysByJob.get(jobId) ?? [];
    this.relaysByJob.delete(jobId);
    await Promise.all(relays.map((relay) => relay.stop()));
  }

  private async stopAll(): Promise<void> {
    clearInterval(this.heartbeatTimer);
    await Promise.all([...this.relaysByJob.keys()].map((jobId) => this.releaseJob(jobId)));
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
