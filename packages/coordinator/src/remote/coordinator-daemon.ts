/**
 * The coordinator daemon (`seesaw coordinator`): one port serves HTTP (/healthz as JSON,
 * /metrics in Prometheus text) and the WebSocket upgrade for every peer. A WebSocket starts with
 * hello (the cluster token is checked there; refusals are logged and counted), then its first
 * message says what it is: agentJoin (a host agent's control link), deviceChannel (the relayed
 * link of one device of a job) or openJob (a job client).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  acceptHello,
  admitWebSocket,
  ConnectionGate,
  type ConnectionGateOptions,
  createListenerServer,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_PRE_AUTH_MAX_FRAME_BYTES,
  type Endpoint,
  escapeForLog,
  type Message,
  type OpenJob,
  rateLimitedLog,
  type TlsServerCredentials,
  type WebSocketEndpoint,
  webSocketScheme,
} from '@seesaw/protocol';
import { WebSocketServer } from 'ws';
import { ClusterMetrics } from './cluster-metrics.ts';
import { DeviceLinkWaits } from './device-link-waits.ts';
import { DEFAULT_AGENT_HEARTBEAT_INTERVAL_MS, DEFAULT_AGENT_HEARTBEAT_TIMEOUT_MS } from './host-agent.ts';
import { type HostLink, HostRegistry } from './host-registry.ts';
import { RemoteJob } from './remote-job.ts';
import type { DeviceLink, JobClientLink } from './remote-job-context.ts';

export interface CoordinatorDaemonOptions {
  /** Address to bind (default 127.0.0.1). */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  token: string;
  /** Certificate and key: agents and job clients must connect with wss:// (TLS). */
  tls?: TlsServerCredentials;
  log?: (line: string) => void;
  /** Control-link heartbeats with the agents. */
  hostHeartbeatIntervalMs?: number;
  hostHeartbeatTimeoutMs?: number;
  /** Heartbeats with each device actor (default DeviceActorHandle's). */
  deviceHeartbeatIntervalMs?: number;
  deviceHeartbeatTimeoutMs?: number;
  /** Largest frame before hello is accepted (default 64 KiB); after it, 1 GiB. */
  preAuthMaxFrameBytes?: number;
  /** Caps on unauthenticated connections per address and overall; failed-handshake slow-down. */
  gate?: ConnectionGateOptions;
  /** An authenticated link must say what it is within this long (default 10 s). */
  firstMessageTimeoutMs?: number;
}

/** Largest frame an authenticated peer may send (tensor relays). */
const MAX_FRAME_BYTES = 1 << 30;

/** What /healthz answers. */
export interface CoordinatorHealth {
  status: 'ok';
  hosts: Array<{ name: string; devices: number; busyDevices: number }>;
  devices: number;
  runningJobs: Array<{ id: number; layout: string }>;
}

export class CoordinatorDaemon {
  readonly metrics = new ClusterMetrics();
  private readonly registry: HostRegistry;
  private readonly jobs = new Map<number, RemoteJob>();
  private readonly deviceLinks = new DeviceLinkWaits<DeviceLink>();
  private nextJobId = 1;
  private readonly log: (line: string) => void;
  /** For lines about unauthenticated peers: rate-limited so floods cannot fill the disk. */
  private readonly peerLog: (line: string) => void;
  private readonly gate: ConnectionGate;

  private constructor(
    private readonly options: CoordinatorDaemonOptions,
    private readonly server: Server,
    private readonly wss: WebSocketServer,
  ) {
    this.log = options.log ?? ((line) => console.error(line));
    this.peerLog = rateLimitedLog(this.log);
    this.gate = new ConnectionGate(options.gate);
    this.registry = new HostRegistry(
      this.log,
      () => this.metrics.add('hostsLostTotal'),
      options.hostHeartbeatIntervalMs ?? DEFAULT_AGENT_HEARTBEAT_INTERVAL_MS,
      options.hostHeartbeatTimeoutMs ?? DEFAULT_AGENT_HEARTBEAT_TIMEOUT_MS,
    );
    server.on('request', (request, response) => this.serveHttp(request, response));
    server.on('upgrade', (request, socket, head) => {
      wss.handleUpgrade(request, socket, head, (ws) => {
        const link = admitWebSocket(ws, request, {
          gate: this.gate,
          log: this.peerLog,
          maxFrameBytes: MAX_FRAME_BYTES,
          onHandshakeFailed: () => this.metrics.add('refusedConnectionsTotal'),
        });
        if (link) void this.accept(link as WebSocketEndpoint as WebSocketEndpoint<Message, Message>);
      });
    });
  }

  static async start(options: CoordinatorDaemonOptions): Promise<CoordinatorDaemon> {
    const server = createListenerServer(options.tls);
    // Sockets start at the small pre-authentication limit; welcome lifts it to MAX_FRAME_BYTES.
    const wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: options.preAuthMaxFrameBytes ?? DEFAULT_PRE_AUTH_MAX_FRAME_BYTES,
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new CoordinatorDaemon(options, server, wss);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get host(): string {
    return this.options.host ?? '127.0.0.1';
  }

  /** ws://HOST:PORT (wss:// with TLS) for agents and job clients. */
  get url(): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `${webSocketScheme(this.options.tls)}://${host}:${this.port}`;
  }

  health(): CoordinatorHealth {
    const hosts = this.registry.list.map((h) => ({
      name: h.name,
      devices: h.numDevices,
      busyDevices: h.busyDevices,
    }));
    return {
      status: 'ok',
      hosts,
      devices: hosts.reduce((sum, h) => sum + h.devices, 0),
      runningJobs: [...this.jobs.values()].map((job) => ({ id: job.id, layout: job.layout })),
    };
  }

  metricsText(): string {
    const hosts = this.registry.list;
    return this.metrics.format({
      hosts: hosts.length,
      devices: hosts.reduce((sum, h) => sum + h.numDevices, 0),
      busyDevices: hosts.reduce((sum, h) => sum + h.busyDevices, 0),
      runningJobs: this.jobs.size,
    });
  }

  async close(): Promise<void> {
    this.registry.close();
    for (const client of this.wss.clients) client.terminate();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
  }

  private serveHttp(request: IncomingMessage, response: ServerResponse): void {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET') {
      response.writeHead(405, { 'content-type': 'text/plain' }).end('method not allowed\n');
    } else if (path === '/healthz') {
      response
        .writeHead(200, { 'content-type': 'application/json' })
        .end(`${JSON.stringify(this.health())}\n`);
    } else if (path === '/metrics') {
      response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(this.metricsText());
    } else {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found (try /healthz or /metrics)\n');
    }
  }

  /** Hello, then dispatch on the first message. */
  private async accept(link: WebSocketEndpoint<Message, Message>): Promise<void> {
    try {
      await acceptHello(link, {
        role: 'coordinator',
        name: 'coordinator',
        expectedToken: this.options.token,
        allowedRoles: ['device', 'coordinator'],
        log: this.peerLog,
      });
    } catch {
      // Counted by the admission (refusedConnectionsTotal) and logged by acceptHello.
      return;
    }
    const first = await this.firstMessage(link);
    if (first === undefined) return;
    switch (first.tag) {
      case 'agentJoin': {
        const refusal = this.registry.join(
          first.hostName,
          first.numDevices,
          link as Endpoint as HostLink,
          first.peerUrl,
        );
        if (refusal) {
          this.log(`coordinator: refused agent at ${link.name}: ${escapeForLog(refusal, 200)}`);
          link.close(refusal);
        }
        return;
      }
      case 'deviceChannel':
        this.deviceLinks.route(first.jobId, first.device, link as Endpoint as DeviceLink);
        return;
      case 'openJob':
        void this.runJob(first, link as Endpoint as JobClientLink);
        return;
      default:
        link.post({
          tag: 'protocolError',
          code: 'unexpected',
          message: `unexpected first message ${first.tag}`,
        });
        link.close(`unexpected first message ${first.tag}`);
    }
  }

  /** The first message after welcome, or undefined when the link closed or stayed silent. */
  private firstMessage(link: WebSocketEndpoint<Message, Message>): Promise<Message | undefined> {
    const timeoutMs = this.options.firstMessageTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        offMessage();
        offClose();
        this.peerLog(`coordinator: ${link.name}: nothing after welcome within ${timeoutMs} ms`);
        link.close(`idle: nothing after welcome within ${timeoutMs} ms`);
        resolve(undefined);
      }, timeoutMs);
      const offMessage = link.onMessage((message) => {
        clearTimeout(timer);
        offMessage();
        offClose();
        resolve(message);
      });
      const offClose = link.onClose(() => {
        clearTimeout(timer);
        offMessage();
        resolve(undefined);
      });
    });
  }

  private async runJob(open: OpenJob, client: JobClientLink): Promise<void> {
    const jobId = this.nextJobId++;
    const job = new RemoteJob(
      {
        jobId,
        registry: this.registry,
        metrics: this.metrics,
        expectDeviceLink: (id, device, timeoutMs) => this.deviceLinks.expect(id, device, timeoutMs),
        cancelDeviceLinks: (id, reason) => this.deviceLinks.cancel(id, reason),
        // Job ids and a re-planned job's device job ids share one counter: never the same twice.
        nextDeviceJobId: () => this.nextJobId++,
        heartbeatIntervalMs: this.options.deviceHeartbeatIntervalMs,
        heartbeatTimeoutMs: this.options.deviceHeartbeatTimeoutMs,
        log: this.log,
      },
      client,
      open,
    );
    this.jobs.set(jobId, job);
    try {
      await job.run();
    } finally {
      this.jobs.delete(jobId);
    }
  }
}
