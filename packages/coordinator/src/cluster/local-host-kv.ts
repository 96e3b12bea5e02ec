/**
 * The host KV tier of a LocalCluster: one kv-store worker thread for the host, which every
 * device worker reaches over its own MessagePort and swaps its layers x KV heads through.
 *
 * Slot authority: the store's slots are split into equal, disjoint ranges, one per replica's
 * engine (dp of them); each engine's scheduler allots slot ids 0..numSlotsPerEngine-1 and its
 * replica's batches are offset into its own range (withHostSlots). Devices name those slots in every
 * kvPut / kvGet, so the store's own allocator is not used and nothing has to be mirrored.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import {
  hostKvLayoutFor,
  type KvForwardingSpec,
  type KvStoreWorker,
  slotBytes,
  spawnKvStoreWorker,
} from '@seesaw/kv-store';
import type { ModelConfig } from '@seesaw/model';
import { connectAndHello, INBOUND_TAGS, type KvCacheDType } from '@seesaw/protocol';

/** What each engine's scheduler is given (EngineOptions.hostKv). */
export interface EngineHostKv {
  numSlots: number;
  slotBytes: number;
}

export interface LocalHostKvOptions {
  config: ModelConfig;
  /** Tokens per KV block = tokens per host slot. */
  blockSize: number;
  /** Element type of the slots: the devices' KV dtype (no conversion on the way). Default f32. */
  kvDtype?: KvCacheDType;
  /** Host memory for KV, bytes. */
  capacityBytes: number;
  /** Engines sharing the store (one per DP replica). */
  numEngines: number;
  token: string;
  log?: (line: string) => void;
}

/**
 * Each engine's share of a store of capacityBytes shared by numEngines engines. Depends only on
 * its arguments, so a coordinator computes the same shares as every host running such a store.
 * 16-bit slots take half the bytes: twice the slots for the same capacity.
 */
export function engineHostKvFor(
  config: ModelConfig,
  blockSize: number,
  capacityBytes: number,
  numEngines: number,
  kvDtype: KvCacheDType = 'f32',
): EngineHostKv {
  const bytesPerSlot = slotBytes(hostKvLayoutFor(config, blockSize, kvDtype));
  const numSlots = Math.floor(capacityBytes / bytesPerSlot);
  const numSlotsPerEngine = Math.floor(numSlots / numEngines);
  if (numSlotsPerEngine < 1) {
    throw new RangeError(
      `host KV memory of ${capacityBytes} bytes holds ${numSlots} slots of ${bytesPerSlot} bytes; ` +
        `${numEngines} engines need at least one each`,
    );
  }
  return { numSlots: numSlotsPerEngine, slotBytes: bytesPerSlot };
}

export class LocalHostKv {
  private isClosed = false;

  private constructor(
    private readonly worker: KvStoreWorker,
    /** Slots each engine owns; slot ids of engine e are [e * numSlots, (e + 1) * numSlots). */
    readonly engineHostKv: EngineHostKv,
    readonly numSlots: number,
  ) {}

  static async start(options: LocalHostKvOptions): Promise<LocalHostKv> {
    const layout = hostKvLayoutFor(options.config, options.blockSize, options.kvDtype);
    const engineHostKv = engineHostKvFor(
      options.config,
      options.blockSize,
      options.capacityBytes,
      options.numEngines,
      options.kvDtype,
    );
    const worker = spawnKvStoreWorker(
      {
        name: 'kv-store (local host)',
        token: options.token,
        layout,
        capacityBytes: options.capacityBytes,
        isLogged: process.env.SEESAW_DEBUG !== undefined,
      },
      { accept: INBOUND_TAGS.kvStoreToCoordinator, log: options.log },
    );
    try {
      await connectAndHello(worker.endpoint, {
        role: 'coordinator',
        name: 'coordinator',
        token: options.token,
        timeoutMs: 60_000,
      });
    } catch (error) {
      worker.endpoint.close('kv-store handshake failed');
      await worker.worker.terminate();
      throw error;
    }
    const numSlots = Math.floor(options.capacityBytes / engineHostKv.slotBytes);
    return new LocalHostKv(worker, engineHostKv, numSlots);
  }

  /**
   * A new link to the store, for one device worker (its hello proves the cluster token). With
   * `forwarding` (a device of a Seesaw replica spanning hosts) the store sends the parts of its
   * puts that devices on other hosts own on to their stores (peerStorePort).
   */
  linkPort(forwarding?: KvForwardingSpec): MessagePort {
    const { port1, port2 } = new MessageChannel();
    this.worker.sendLinkPort(port2, forwarding);
    return port1;
  }

  /** This store's end of a link to the store of `host` (relay the returned port there). */
  peerStorePort(host: string): MessagePort {
    const { port1, port2 } = new MessageChannel();
    this.worker.sendPeerStorePort(port2, host);
    return port1;
  }

  /** Ends the store thread (closing its parent link closes every device link). Idempotent. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.worker.endpoint.close('cluster closed');
    await this.worker.exited;
  }
}
