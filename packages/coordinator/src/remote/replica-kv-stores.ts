/**
 * A replica's links to the host KV tier as one host agent makes them: every device swaps through
 * its own host's kv-store (so a device on the same host as its store shares its KV cache with it).
 * A Seesaw replica spanning hosts also links the stores of its hosts pairwise, and each device's
 * link carries the replica's forwarding spec: its host's store sends the parts of each put that
 * devices on other hosts own under either layout on to their stores (kv-put-forwarder.ts), so a
 * device that prefetches after a switch finds them in its own host's store.
 *
 * Store-to-store links are agent peer links between the first devices of the two hosts, made
 * after the replica's other links in the same order on every agent (ReplicaPeerLinker numbering).
 */
import type { KvReplicaLayout } from '@seesaw/kv-store';
import type { DeviceWorkerLinkPorts } from '@seesaw/protocol';
import type { LocalHostKv } from '../cluster/local-host-kv.ts';
import type { ReplicaPeerLinker } from './replica-peer-linker.ts';

export interface ReplicaKvStoresSetup {
  hostKv: LocalHostKv;
  linker: ReplicaPeerLinker;
  /** Local indices of the devices on this host. */
  here: ReadonlySet<number>;
  /** By local index; each device here gets its kvStore port. */
  links: DeviceWorkerLinkPorts[];
  /** Peer address of each device's host; absent when the replica is all here. */
  hostUrls: readonly string[] | undefined;
  /** The replica's layouts: one (static) or two (Seesaw prefill, decode). */
  layouts: readonly KvReplicaLayout[];
  numLayers: number;
  numKvHeads: number;
}

/** The other hosts of a Seesaw replica spanning hosts, in order of their first device; else []. */
function spannedHosts(
  layouts: readonly KvReplicaLayout[],
  hostUrls: readonly string[] | undefined,
): string[] {
  if (layouts.length < 2 || !hostUrls) return [];
  const hosts = [...new Set(hostUrls)];
  return hosts.length > 1 ? hosts : [];
}

export function wireReplicaKvStores(setup: ReplicaKvStoresSetup): void {
  const { hostKv, linker, here, links, hostUrls, layouts, numLayers, numKvHeads } = setup;
  const hosts = spannedHosts(layouts, hostUrls);
  if (hosts.length === 0 || !hostUrls) {
    for (const local of here) links[local]!.kvStore = hostKv.linkPort();
    return;
  }
  for (const local of here) {
    const forwarding = { numLayers, numKvHeads, layouts, deviceHosts: hostUrls, host: hostUrls[local]! };
    links[local]!.kvStore = hostKv.linkPort(forwarding);
  }
  const firstDeviceOf = (host: string) => hostUrls.indexOf(host);
  for (const from of hosts)
    for (const to of hosts) {
      if (from === to) continue;
      const [x, y] = [firstDeviceOf(from), firstDeviceOf(to)];
      // from's store dials to's store as a device would.
      if (here.has(x)) linker.linkPort(hostKv.peerStorePort(to), x, y);
      else if (here.has(y)) linker.linkPort(hostKv.linkPort(), y, x);
      else linker.skip(x, y);
    }
}
