/**
 * The kv-store actor: serves one HostKvStore to any number of links, each over any Endpoint.
 * The coordinator's link does slot accounting (reserve / release / capacityQuery); device
 * links move KV slices (kvPut / kvGet). Every request is answered, a bad one with kvError or
 * reserveFailed, and the actor keeps serving: nothing a peer sends can throw out of here.
 *
 * Work is synchronous per message (copies into and out of host memory), so replies leave in
 * request order on each link and a 'drain' shutdown has nothing in flight to wait for.
 */

import {
  acceptHello,
  type CoordinatorToKvStore,
  type DeviceToKvStore,
  type Endpoint,
  INBOUND_TAGS,
  type KvSliceAddress,
  type Message,
  type PeerInfo,
  type ProtocolError,
  type Shutdown,
  type Tensor,
} from '@seesaw/protocol';
import type { HostKvStore } from './host-kv-store.ts';

/** Any link the actor serves; the peer's role (from its hello) decides what it may send. */
export type KvStoreLink = Endpoint<Message, Message>;

/** Tags a kv-store accepts before it knows the peer's role: coordinator and device requests. */
export const KV_STORE_INBOUND_TAGS: ReadonlySet<string> = new Set([
  ...INBOUND_TAGS.coordinatorToKvStore,
  ...INBOUND_TAGS.deviceToKvStore,
]);

export interface KvStoreActorOptions {
  /** Name sent in welcome and used in logs, e.g. 'kv-store@host-a'. */
  name: string;
  /** Cluster token peers must present in hello. */
  token: string;
  log?: (line: string) => void;
  handshakeTimeoutMs?: number;
  /** Called when the coordinator orders a shutdown, after every link is closed. */
  onShutdown?: (mode: Shutdown['mode']) => void;
}

/** Running totals (tests, metrics). */
export interface KvStoreCounters {
  numPuts: number;
  numGets: number;
  numErrors: number;
  numBytesIn: number;
  numBytesOut: number;
}

const MAX_REASON_LENGTH = 1024;

export class KvStoreActor {
  readonly counters: KvStoreCounters = {
    numPuts: 0,
    numGets: 0,
    numErrors: 0,
    numBytesIn: 0,
    numBytesOut: 0,
  };
  private readonly links = new Set<KvStoreLink>();
  private readonly log: (line: string) => void;
  private numHeartbeats = 0;

  constructor(
    readonly store: HostKvStore,
    private readonly options: KvStoreActorOptions,
  ) {
    this.log = options.log ?? ((line) => console.warn(`${options.name}: ${line}`));
  }

  get numLinks(): number {
    return this.links.size;
  }

  /**
   * Accepts the peer's hello (coordinator or device), then serves it by role. Rejects with a
   * HandshakeError when the hello is refused (the link is closed by then).
   */
  async serve(endpoint: KvStoreLink): Promise<PeerInfo> {
    const peer = await acceptHello(endpoint, {
      role: 'kvStore',
      name: this.options.name,
      expectedToken: this.options.token,
      allowedRoles: ['coordinator', 'device'],
      log: this.log,
      timeoutMs: this.options.handshakeTimeoutMs,
    });
    if (peer.role === 'coordinator') this.serveCoordinator(endpoint);
    else this.serveDevice(endpoint);
    return peer;
  }

  /** Serves a coordinator link whose handshake is done; announces the capacity first. */
  serveCoordinator(endpoint: KvStoreLink): void {
    this.attach(endpoint, (message) => this.handleCoordinator(endpoint, message as CoordinatorToKvStore));
    endpoint.post(this.capacity(0));
  }

  /** Serves a device link whose handshake is done. */
  serveDevice(endpoint: KvStoreLink): void {
    this.attach(endpoint, (message, tensors) =>
      this.handleDevice(endpoint, message as DeviceToKvStore, tensors),
    );
  }

  /** Closes every link. */
  close(reason = 'kv-store closed'): void {
    for (const link of [...this.links]) link.close(reason);
    this.links.clear();
  }

  private attach(endpoint: KvStoreLink, handle: (message: Message, tensors: Tensor[]) => void): void {
    this.links.add(endpoint);
    const off = endpoint.onMessage((message, tensors) => {
      try {
        handle(message, tensors);
      } catch (error) {
        // Only a bug here can throw; report it to the peer as well as the log.
        this.log(`internal error on ${message.tag} from ${endpoint.name}: ${String(error)}`);
        this.reject(endpoint, 'unexpected', `internal error: ${String(error)}`, message.tag);
      }
    });
    endpoint.onClose(() => {
      off();
      this.links.delete(endpoint);
    });
  }

  private handleCoordinator(endpoint: KvStoreLink, message: CoordinatorToKvStore): void {
    switch (message.tag) {
      case 'reserve': {
        const result = this.store.reserve(message.seqId, message.numSlots);
        if (result.ok)
          endpoint.post({
            tag: 'reserved',
            requestId: message.requestId,
            seqId: message.seqId,
            slotIds: result.slotIds,
          });
        else
          endpoint.post({
            tag: 'reserveFailed',
            requestId: message.requestId,
            seqId: message.seqId,
            reason: result.reason.slice(0, MAX_REASON_LENGTH),
          });
        return;
      }
      case 'release': {
        // Release has no answer; a bad one comes back as a rejected frame so the
        // coordinator's accounting bug is visible on its side too.
        const result = this.store.release(message.seqId, message.slotIds);
        if (!result.ok) this.reject(endpoint, 'badField', `release: ${result.reason}`, 'release');
        return;
      }
      case 'capacityQuery':
        endpoint.post(this.capacity(message.requestId));
        return;
      case 'heartbeat':
        endpoint.post({ tag: 'heartbeat', seq: this.numHeartbeats++, sentAtMs: Date.now() });
        return;
      case 'shutdown':
        this.log(`shutdown (${message.mode}) ordered by ${endpoint.name}`);
        this.close(`shutdown (${message.mode})`);
        this.options.onShutdown?.(message.mode);
        return;
      case 'protocolError':
        this.log(`${endpoint.name} rejected a frame: ${message.code}: ${message.message}`);
        return;
      default:
        this.reject(
          endpoint,
          'unexpected',
          `${(message as Message).tag} is not a coordinator request`,
          message.tag,
        );
    }
  }

  private handleDevice(endpoint: KvStoreLink, message: DeviceToKvStore, tensors: Tensor[]): void {
    switch (message.tag) {
      case 'kvPut': {
        const result =
          tensors.length === 1
            ? this.store.put(message, tensors[0]!)
            : { ok: false as const, reason: `kvPut needs exactly one tensor, got ${tensors.length}` };
        if (!result.ok) {
          this.kvError(endpoint, message, result.reason);
          return;
        }
        this.counters.numPuts++;
        this.counters.numBytesIn += tensors[0]!.data.byteLength;
        endpoint.post({ tag: 'kvPutDone', requestId: message.requestId });
        return;
      }
      case 'kvGet': {
        const result =
          tensors.length === 0
            ? this.store.get(message)
            : { ok: false as const, reason: `kvGet carries no tensor, got ${tensors.length}` };
        if (!result.ok) {
          this.kvError(endpoint, message, result.reason);
          return;
        }
        this.counters.numGets++;
        this.counters.numBytesOut += result.tensor.data.byteLength;
        const { requestId, seqId, layers, heads, tokens, slotIds } = message;
        const answer: Message = { tag: 'kvData', requestId, seqId, layers, heads, tokens };
        if (slotIds !== undefined) answer.slotIds = slotIds;
        endpoint.post(answer, [result.tensor]);
        return;
      }
      case 'heartbeat':
        endpoint.post({ tag: 'heartbeat', seq: this.numHeartbeats++, sentAtMs: Date.now() });
        return;
      case 'protocolError':
        this.log(`${endpoint.name} rejected a frame: ${message.code}: ${message.message}`);
        return;
      default:
        this.reject(
          endpoint,
          'unexpected',
          `${(message as Message).tag} is not a device request`,
          message.tag,
        );
    }
  }

  private kvError(endpoint: KvStoreLink, request: KvSliceAddress, reason: string): void {
    this.counters.numErrors++;
    const requestId =
      Number.isSafeInteger(request.requestId) && request.requestId >= 0 ? request.requestId : 0;
    endpoint.post({ tag: 'kvError', requestId, message: reason.slice(0, 4096) });
  }

  private reject(endpoint: KvStoreLink, code: ProtocolError['code'], message: string, tag: string): void {
    this.counters.numErrors++;
    if (tag === 'protocolError') return;
    endpoint.post({
      tag: 'protocolError',
      code,
      message: message.slice(0, 4096),
      rejectedTag: tag.slice(0, 256),
    });
  }

  private capacity(requestId: number): Message {
    return {
      tag: 'capacity',
      requestId,
      numSlots: this.store.numSlots,
      numFreeSlots: this.store.numFreeSlots,
      slotBytes: this.store.slotBytes,
    };
  }
}
