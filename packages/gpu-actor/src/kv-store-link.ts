/**
 * A device worker's link to its host's kv-store: opening it (hello as a device) and sharing the
 * device's KV cache buffer on it, the first step of the shared-memory swap path
 * (KvStoreSwapper.sharing).
 */
import type { MessagePort } from 'node:worker_threads';
import {
  connectAndHello,
  type DeviceToKvStore,
  INBOUND_TAGS,
  type KvStoreToDevice,
  SharedRegion,
  WorkerPortEndpoint,
} from '@seesaw/protocol';

export type KvStoreLinkEndpoint = WorkerPortEndpoint<DeviceToKvStore, KvStoreToDevice>;

/** The kv-store may still be starting (tsx compiles its worker). */
const KV_STORE_HANDSHAKE_TIMEOUT_MS = 60_000;

/** Opens this device's link to the host's kv-store and says hello as a device. */
export async function openKvStoreLink(
  port: MessagePort,
  options: { deviceName: string; token: string },
): Promise<KvStoreLinkEndpoint> {
  const link = new WorkerPortEndpoint<DeviceToKvStore, KvStoreToDevice>(
    port,
    `${options.deviceName} -> kv-store`,
    { accept: INBOUND_TAGS.kvStoreToDevice },
  );
  await connectAndHello(link, {
    role: 'device',
    name: options.deviceName,
    token: options.token,
    timeoutMs: KV_STORE_HANDSHAKE_TIMEOUT_MS,
  });
  return link;
}

/**
 * Shares a buffer on the kv-store link (announced as a shared region before any later frame)
 * and returns the region id it goes by there.
 */
export type RegionSharer = (buffer: SharedArrayBuffer) => number;

/**
 * The one region id a device's KV cache goes by on its kv-store link: a re-shard that grew the
 * arena announces the new buffer under the same id, which replaces (and lets go of) the old one.
 */
const KV_CACHE_REGION = 1;

/** The RegionSharer of a device's kv-store link. */
export function regionSharerOf(link: KvStoreLinkEndpoint): RegionSharer {
  return (buffer) => {
    link.shareRegion(new SharedRegion(KV_CACHE_REGION, buffer));
    return KV_CACHE_REGION;
  };
}
