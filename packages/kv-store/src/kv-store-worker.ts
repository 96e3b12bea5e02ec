/**
 * Entry of a kv-store worker thread (start it with spawnKvStoreWorker). The link to the
 * parent is served first; further links arrive as MessagePorts on the Worker's own port.
 * The store lives as long as the parent link: when it closes (or the coordinator orders a
 * shutdown) every link is closed and the thread ends.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { parentWorkerEndpoint, WorkerPortEndpoint } from '@seesaw/protocol';
import { HostKvStore } from './host-kv-store.ts';
import { KvForwardingTable } from './kv-forwarding-table.ts';
import {
  FORWARDING_STORE_SUFFIX,
  KvPutForwarder,
  openPeerStore,
  type PeerStore,
} from './kv-put-forwarder.ts';
import { KvStoreActor } from './kv-store-actor.ts';
import { KV_STORE_INBOUND_TAGS, type KvStoreLink } from './kv-store-link.ts';
import {
  isKvLinkAnnouncement,
  isKvPeerStoreAnnouncement,
  type KvStoreWorkerData,
} from './kv-store-worker-data.ts';

const data = workerData as KvStoreWorkerData;
const log = data.isLogged === false ? () => {} : (line: string) => console.warn(`${data.name}: ${line}`);
const store = new HostKvStore({
  layout: data.layout,
  capacityBytes: data.capacityBytes,
  // Slots in shared memory by default: a device of this host shares its cache with this thread.
  isShared: data.isShared ?? true,
});
const actor = new KvStoreActor(store, { name: data.name, token: data.token, log, onShutdown: stop });
const parent = parentWorkerEndpoint({ accept: KV_STORE_INBOUND_TAGS, name: 'parent', log });
let numLinks = 0;
/** This store's links to other hosts' stores (forwards), by host; the latest announced wins. */
const peerStores = new Map<string, Promise<PeerStore>>();
const forwarders: KvPutForwarder[] = [];

/** Parts other hosts' stores forwarded here. */
let numReceived = 0;

function serve(link: KvStoreLink, forwarder?: KvPutForwarder): void {
  // A refused hello is logged and its link closed by acceptHello; the store keeps serving.
  actor.serve(link).then(
    (peer) => {
      if (forwarder) actor.setForwarder(link, forwarder);
      if (peer.name.endsWith(FORWARDING_STORE_SUFFIX))
        link.onMessage((message) => {
          if (message.tag === 'kvPut') numReceived++;
        });
    },
    () => {},
  );
}

function onControl(value: unknown): void {
  if (isKvPeerStoreAnnouncement(value)) {
    const { host } = value;
    const opened = openPeerStore(value.seesawKvPeerStore, { name: data.name, token: data.token, host });
    opened.catch((error: unknown) => log(`link to the kv-store of ${host}: ${String(error)}`));
    peerStores.set(host, opened);
    return;
  }
  if (!isKvLinkAnnouncement(value)) {
    log('ignored a control message that is not a link announcement');
    return;
  }
  const name = `link ${++numLinks}`;
  let forwarder: KvPutForwarder | undefined;
  if (value.forwarding) {
    try {
      forwarder = new KvPutForwarder(store, new KvForwardingTable(value.forwarding), peerStores);
      forwarders.push(forwarder);
    } catch (error) {
      // The link is served without forwards: the other host's prefetches then fail loudly.
      log(`${name}: forwarding refused: ${String(error)}`);
    }
  }
  serve(new WorkerPortEndpoint(value.seesawKvLink, name, { accept: KV_STORE_INBOUND_TAGS, log }), forwarder);
}

function stop(): void {
  parentPort?.off('message', onControl);
  if (forwarders.length > 0) {
    // A store of a Seesaw replica spanning hosts says what it took in and sent on, always: its
    // host's devices' write-backs (copies out; puts also count the parts received), the parts
    // it forwarded and those other hosts' stores forwarded here.
    const { numPuts, numCopiesOut } = actor.counters;
    const numForwards = forwarders.reduce((sum, f) => sum + f.counters.numForwards, 0);
    const numBytes = forwarders.reduce((sum, f) => sum + f.counters.numBytesForwarded, 0);
    console.warn(
      `${data.name}: ${numPuts} puts, ${numCopiesOut} copies out stored; ` +
        `${numForwards} parts (${numBytes} bytes) forwarded, ${numReceived} parts received`,
    );
  }
  for (const link of peerStores.values()) link.then((peer) => peer.close('kv-store stopped')).catch(() => {});
  actor.close();
  parent.close('kv-store stopped');
}

parentPort?.on('message', onControl);
// Only the links keep the thread alive; the control port alone does not.
parentPort?.unref();
parent.onClose(() => stop());
serve(parent);
