/**
 * The kv-store actor: serves one HostKvStore to any number of links, each over any Endpoint.
 * The coordinator's link does slot accounting (reserve / release / capacityQuery); device
 * links move KV slices (kvPut / kvGet). Every request is answered, a bad one with kvError or
 * reserveFailed, and the actor keeps serving: nothing a peer sends can throw out of here.
 *
 * Each request's work is synchronous (copies into and out of host memory), so replies leave in
 * request order on each link. Device links' requests are queued and served in slices between
 * turns of the event loop (device-request-queue.ts): in order within a link, and across links a
 * request its device waits for now before another link's prefetch. A 'drain' shutdown runs what
 * is queued first. The one exception to in-order replies: a device link of a Seesaw replica
 * spanning hosts (setForwarder) has its kvPut / kvCopyOut answered once the parts other hosts
 * own are stored there too (kv-put-forwarder.ts).
 *
 * A device on the same host shares its KV cache (kvCacheShare, after announcing the buffer as a
 * shared region of the link) and then names blocks and slots only (kvCopyOut / kvCopyIn): this
 * thread copies between the two regions, the role of a copy engine, and answers kvCopyDone once
 * the bytes are there. Because each link is served in order, a copy in never overtakes an
 * earlier copy out on the same link, exactly as a kvGet never overtakes an earlier kvPut.
 */

import {
  acceptHello,
  type CoordinatorToKvStore,
  type DeviceToKvStore,
  type KvSliceAddress,
  type Message,
  type PeerInfo,
  type ProtocolError,
  type Shutdown,
  type Tensor,
} from '@seesaw/protocol';
import { DeviceRequestQueue } from './device-request-queue.ts';
import type { HostKvStore, StoreResult } from './host-kv-store.ts';
import { boxBytes, type KvStoreCounters, zeroKvStoreCounters } from './kv-store-counters.ts';
import { holdsRegions, type KvStoreForwarder, type KvStoreLink } from './kv-store-link.ts';
import { capacityFrame, kvErrorFrame, protocolErrorFrame } from './kv-store-replies.ts';
import { type SharedKvCache, viewSharedKvCache } from './shared-kv-cache.ts';

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

const MAX_REASON_LENGTH = 1024;

export class KvStoreActor {
  readonly counters: KvStoreCounters = zeroKvStoreCounters();
  private readonly links = new Set<KvStoreLink>();
  /** Each device link's shared KV cache, once it has shared one. */
  private readonly sharedCaches = new Map<KvStoreLink, SharedKvCache>();
  /** Device links of a Seesaw replica spanning hosts: what their puts store goes on from here. */
  private readonly forwarders = new Map<KvStoreLink, KvStoreForwarder>();
  /** Device links' requests not yet served. */
  private readonly deviceRequests = new DeviceRequestQueue<KvStoreLink>();
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
    endpoint.post(capacityFrame(this.store, 0));
  }

  /** Serves a device link whose handshake is done. */
  serveDevice(endpoint: KvStoreLink): void {
    this.attach(endpoint, (message, tensors) => {
      const request = message as DeviceToKvStore;
      this.deviceRequests.push(endpoint, isPrefetch(request), () =>
        this.guarded(endpoint, message, () => this.handleDevice(endpoint, request, tensors)),
      );
    });
  }

  /**
   * From now on, what `link`'s kvPut / kvCopyOut store is forwarded too, and each is answered
   * once the forward is confirmed (kvError naming the peer when it fails).
   */
  setForwarder(link: KvStoreLink, forwarder: KvStoreForwarder): void {
    this.forwarders.set(link, forwarder);
  }

  /** Closes every link. */
  close(reason = 'kv-store closed'): void {
    for (const link of [...this.links]) link.close(reason);
    this.links.clear();
  }

  private attach(endpoint: KvStoreLink, handle: (message: Message, tensors: Tensor[]) => void): void {
    this.links.add(endpoint);
    const off = endpoint.onMessage((message, tensors) =>
      this.guarded(endpoint, message, () => handle(message, tensors)),
    );
    endpoint.onClose(() => {
      off();
      this.deviceRequests.drop(endpoint);
      this.links.delete(endpoint);
      this.sharedCaches.delete(endpoint);
      this.forwarders.delete(endpoint);
    });
  }

  /** Runs `handle`; only a bug can throw there, reported to the peer as well as the log. */
  private guarded(endpoint: KvStoreLink, message: Message, handle: () => void): void {
    try {
      handle();
    } catch (error) {
      this.log(`internal error on ${message.tag} from ${endpoint.name}: ${String(error)}`);
      this.reject(endpoint, 'unexpected', `internal error: ${String(error)}`, message.tag);
    }
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
        endpoint.post(capacityFrame(this.store, message.requestId));
        return;
      case 'heartbeat':
        endpoint.post({ tag: 'heartbeat', seq: this.numHeartbeats++, sentAtMs: Date.now() });
        return;
      case 'shutdown':
        this.log(`shutdown (${message.mode}) ordered by ${endpoint.name}`);
        this.deviceRequests.runAll();
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
        this.answerOnceForwarded(endpoint, message, { tag: 'kvPutDone', requestId: message.requestId });
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
      case 'kvCacheShare': {
        const { tag: _tag, requestId, region, ...geometry } = message;
        const buffer = holdsRegions(endpoint) ? endpoint.peerRegion(region)?.buffer : undefined;
        const cache = buffer
          ? viewSharedKvCache(geometry, buffer)
          : `region ${region} was not shared with this kv-store (not the same host?)`;
        if (typeof cache === 'string') {
          this.kvError(endpoint, message, `kvCacheShare: ${cache}`);
          return;
        }
        this.sharedCaches.set(endpoint, cache);
        endpoint.post({ tag: 'kvCacheShared', requestId });
        return;
      }
      case 'kvCopyOut':
      case 'kvCopyIn': {
        const cache = this.sharedCaches.get(endpoint);
        const isOut = message.tag === 'kvCopyOut';
        const result: StoreResult = !cache
          ? { ok: false, reason: `${message.tag} before a KV cache was shared on this link` }
          : isOut
            ? this.store.copyFromCache(message, cache, message.blockIds)
            : this.store.copyIntoCache(message, cache, message.blockIds);
        if (!result.ok) {
          this.kvError(endpoint, message, result.reason);
          return;
        }
        if (isOut) this.counters.numCopiesOut++;
        else this.counters.numCopiesIn++;
        this.counters.numBytesCopied += boxBytes(message, this.store.layout);
        const done: Message = { tag: 'kvCopyDone', requestId: message.requestId };
        if (isOut) this.answerOnceForwarded(endpoint, message, done);
        else endpoint.post(done);
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

  /** Answers a stored put now, or once its forward to other hosts' stores is confirmed. */
  private answerOnceForwarded(
    endpoint: KvStoreLink,
    box: KvSliceAddress & { requestId: number },
    done: Message,
  ): void {
    const forwarded = this.forwarders.get(endpoint)?.forward(box);
    if (!forwarded) {
      endpoint.post(done);
      return;
    }
    forwarded.then(
      () => endpoint.post(done),
      (error: unknown) => this.kvError(endpoint, box, `stored here, not forwarded: ${String(error)}`),
    );
  }

  private kvError(endpoint: KvStoreLink, request: { requestId: number }, reason: string): void {
    this.counters.numErrors++;
    endpoint.post(kvErrorFrame(request, reason));
  }

  private reject(endpoint: KvStoreLink, code: ProtocolError['code'], message: string, tag: string): void {
    this.counters.numErrors++;
    if (tag === 'protocolError') return;
    endpoint.post(protocolErrorFrame(code, message, tag));
  }
}

/** A request its device awaits only at a later step: served after other links' requests. */
function isPrefetch(message: DeviceToKvStore): boolean {
  return (message.tag === 'kvCopyIn' || message.tag === 'kvGet') && message.isPrefetch === true;
}
