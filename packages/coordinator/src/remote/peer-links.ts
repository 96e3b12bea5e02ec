/**
 * Device links between host agents, for replicas that span hosts. Each agent listens on a peer
 * address (advertised in agentJoin); a link joining device A on one host to device B on another
 * (a TP peer or a PP neighbour) is one WebSocket: the agent of the lower global device dials,
 * proves the cluster token in a hello, names the link with deviceChannel {jobId, device: A,
 * peerDevice: B}, and from then on both agents relay every device<->device frame between that
 * socket and the MessagePort handed to their local device worker, so the worker keeps talking to
 * a MessagePort whether its peer is in the next thread or on the next host.
 */
import { connect as connectTcp } from 'node:net';
import type { MessagePort } from 'node:worker_threads';
import {
  acceptHello,
  connectAndHello,
  connectWebSocket,
  type DeviceChannel,
  type Endpoint,
  INBOUND_TAGS,
  listenWebSocket,
  type Message,
  type WebSocketListener,
  WorkerPortEndpoint,
} from '@seesaw/protocol';

export type PeerSocket = Endpoint<Message, Message>;

/**
 * What crosses a peer link in either direction: device<->device frames, or a device's frames to
 * and from a kv-store on the other host (a Seesaw replica's one store).
 */
const RELAYED_TAGS: ReadonlySet<string> = new Set([
  ...INBOUND_TAGS.deviceToDevice,
  ...INBOUND_TAGS.deviceToKvStore,
  ...INBOUND_TAGS.kvStoreToDevice,
]);

/** A peer agent's hello and link name, then relayed frames. */
const PEER_INBOUND_TAGS: ReadonlySet<string> = new Set([...RELAYED_TAGS, 'deviceChannel']);

interface Rendezvous {
  socket?: PeerSocket;
  waiter?: (socket: PeerSocket) => void;
  timer?: NodeJS.Timeout;
}

/** linkIndex: which of the links joining the two devices (see DeviceChannel). */
function linkKey(jobId: number, dialer: number, acceptor: number, linkIndex: number): string {
  return `${jobId}/${dialer}->${acceptor}#${linkIndex}`;
}

/**
 * Handshakes this agent runs at once toward one peer: the peer's listener admits at most 8
 * unauthenticated connections from one address (ConnectionGate), and a Seesaw replica over two
 * hosts opens a dozen links between them at once.
 */
const MAX_DIALS_PER_PEER = 4;

export class AgentPeerLinks {
  /** Sockets that arrived before their spawnReplica, or spawns waiting for their socket. */
  private readonly rendezvous = new Map<string, Rendezvous>();
  /** Per peer URL: handshakes in flight, and the dials waiting for one to end. */
  private readonly dialSlots = new Map<string, { inFlight: number; waiting: Array<() => void> }>();

  private constructor(
    private readonly listener: WebSocketListener,
    private readonly advertiseHost: string,
    private readonly token: string,
    private readonly log: (line: string) => void,
    /** CA (PEM) that peers' wss:// certificates must chain to. */
    private readonly tlsCa: string | Buffer | undefined,
  ) {}

  /** Listens on host:port (0 picks a free port). */
  static async listen(options: {
    host: string;
    /** The address peers dial (differs from host when that is 0.0.0.0 or ::). */
    advertiseHost: string;
    port: number;
    token: string;
    /** cert + key: listen with TLS only; ca: verify the peers we dial. */
    tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer };
    log: (line: string) => void;
  }): Promise<AgentPeerLinks> {
    const { tls } = options;
    let links: AgentPeerLinks | undefined;
    const pending: PeerSocket[] = [];
    const listener = await listenWebSocket({
      host: options.host,
      port: options.port,
      ...(tls?.cert !== undefined && tls.key !== undefined ? { tls: { cert: tls.cert, key: tls.key } } : {}),
      accept: PEER_INBOUND_TAGS,
      log: options.log,
      onConnection: (socket) => {
        if (links) void links.accept(socket);
        else pending.push(socket);
      },
    });
    links = new AgentPeerLinks(listener, options.advertiseHost, options.token, options.log, tls?.ca);
    for (const socket of pending) void links.accept(socket);
    return links;
  }

  /** ws://HOST:PORT (wss:// with TLS) peers dial. */
  get url(): string {
    const host = this.advertiseHost.includes(':') ? `[${this.advertiseHost}]` : this.advertiseHost;
    const scheme = this.listener.url.startsWith('wss://') ? 'wss' : 'ws';
    return `${scheme}://${host}:${this.listener.port}`;
  }

  /** Dials link `linkIndex` from our `device` to the peer host's `peerDevice`. */
  async dial(
    url: string,
    jobId: number,
    device: number,
    peerDevice: number,
    linkIndex = 0,
  ): Promise<PeerSocket> {
    const release = await this.takeDialSlot(url);
    let socket: PeerSocket;
    try {
      socket = await connectWebSocket<Message, Message>(url, {
        accept: PEER_INBOUND_TAGS,
        log: this.log,
        tlsCa: this.tlsCa,
      });
      await connectAndHello(socket, { role: 'device', name: `device ${device} link`, token: this.token });
    } finally {
      release();
    }
    socket.post({ tag: 'deviceChannel', jobId, device, peerDevice, linkIndex } satisfies DeviceChannel);
    return socket;
  }

  /** Waits until fewer than MAX_DIALS_PER_PEER handshakes toward `url` run; returns the slot's release. */
  private async takeDialSlot(url: string): Promise<() => void> {
    let slots = this.dialSlots.get(url);
    if (!slots) {
      slots = { inFlight: 0, waiting: [] };
      this.dialSlots.set(url, slots);
    }
    const peer = slots;
    // A waiter is handed its slot by the release before it (inFlight unchanged).
    if (peer.inFlight >= MAX_DIALS_PER_PEER) await new Promise<void>((resolve) => peer.waiting.push(resolve));
    else peer.inFlight++;
    let isReleased = false;
    return () => {
      if (isReleased) return;
      isReleased = true;
      const next = peer.waiting.shift();
      if (next) return next();
      peer.inFlight--;
      if (peer.inFlight === 0) this.dialSlots.delete(url);
    };
  }

  /** Resolves with the socket the peer host dials for link `linkIndex` of its `peerDevice` -> our `device`. */
  expect(
    jobId: number,
    peerDevice: number,
    device: number,
    timeoutMs: number,
    linkIndex = 0,
  ): Promise<PeerSocket> {
    const key = linkKey(jobId, peerDevice, device, linkIndex);
    const entry = this.rendezvous.get(key);
    if (entry?.socket) {
      this.rendezvous.delete(key);
      return Promise.resolve(entry.socket);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.rendezvous.delete(key);
        reject(
          new Error(
            `job ${jobId}: device ${peerDevice} did not open link ${linkIndex} to device ${device} in ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.rendezvous.set(key, { waiter: resolve, timer });
    });
  }

  /** Forgets a job's early sockets and waiters (its spawn failed or it ended). */
  forgetJob(jobId: number): void {
    for (const [key, entry] of [...this.rendezvous]) {
      if (!key.startsWith(`${jobId}/`)) continue;
      this.rendezvous.delete(key);
      clearTimeout(entry.timer);
      entry.socket?.close('job released');
    }
  }

  async close(): Promise<void> {
    for (const entry of this.rendezvous.values()) {
      clearTimeout(entry.timer);
      entry.socket?.close('agent stopped');
    }
    this.rendezvous.clear();
    await this.listener.close();
  }

  private async accept(socket: PeerSocket): Promise<void> {
    try {
      await acceptHello(socket, {
        role: 'device',
        name: 'agent peer links',
        expectedToken: this.token,
        allowedRoles: ['device'],
        log: this.log,
      });
    } catch {
      return;
    }
    const first = await new Promise<Message | undefined>((resolve) => {
      const offMessage = socket.onMessage((message) => {
        offMessage();
        offClose();
        resolve(message);
      });
      const offClose = socket.onClose(() => {
        offMessage();
        resolve(undefined);
      });
    });
    if (first === undefined) return;
    if (first.tag !== 'deviceChannel' || first.peerDevice === undefined) {
      socket.close(`peer link must start with deviceChannel naming peerDevice, got ${first.tag}`);
      return;
    }
    const key = linkKey(first.jobId, first.device, first.peerDevice, first.linkIndex ?? 0);
    const entry = this.rendezvous.get(key);
    if (entry?.waiter) {
      this.rendezvous.delete(key);
      clearTimeout(entry.timer);
      entry.waiter(socket);
    } else if (entry?.socket) {
      socket.close(`link ${key} is already open`);
    } else {
      // The peer host handled its spawnReplica first; ours comes soon (or releaseJob forgets it).
      this.rendezvous.set(key, { socket });
    }
  }
}

/**
 * Relays frames between the agent's end of a device worker's MessagePort and a peer socket until
 * either closes (which closes the other). Returns a function that ends the relay.
 */
export function relayPortToSocket(port: MessagePort, socket: PeerSocket, name: string): () => void {
  const local = new WorkerPortEndpoint<Message, Message>(port, name, { accept: RELAYED_TAGS });
  socket.onMessage((message, tensors) => local.post(message, tensors));
  local.onMessage((message, tensors) => socket.post(message, tensors));
  socket.onClose((reason) => local.close(`peer link closed: ${reason}`));
  local.onClose((reason) => socket.close(`device link closed: ${reason}`));
  return () => {
    local.close('relay stopped');
    socket.close('relay stopped');
  };
}

/** The local address this machine uses to reach `url`'s host (the default peer address). */
export function localAddressToward(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  const host = hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve, reject) => {
    const socket = connectTcp({ host, port: Number(port) || 80 }, () => {
      const address = socket.localAddress ?? '127.0.0.1';
      socket.destroy();
      resolve(address.replace(/^::ffff:/, ''));
    });
    socket.once('error', (error) => reject(new Error(`cannot reach ${url}: ${error.message}`)));
  });
}
