/**
 * Which parts of a stored KV box a kv-store forwards to the stores of other hosts, for a Seesaw
 * replica whose devices span hosts (one kv-store per host).
 *
 * Each device writes back and prefetches the layers x KV heads it owns under the layout running
 * at the time, through its own host's store. After a switch a device prefetches parts that, under
 * the other layout, a device on another host wrote. So a store that stores a box forwards to each
 * other host the parts of that box owned by that host's devices under either layout. Checking
 * both layouts needs no knowledge of which layout wrote the box: under the writer's own layout
 * the box lies inside the writer's share, which no other device of that layout owns.
 *
 * Local device i of the replica is (ppStage, tpRank) = (floor(i / tp), i % tp) under each layout
 * (agent-replica-wiring.ts); its layers and KV heads follow balancedRange, as its weights do.
 */

import { balancedRange } from '@seesaw/model';
import type { Range } from '@seesaw/protocol';

export interface KvReplicaLayout {
  tp: number;
  pp: number;
}

export interface KvForwardingSpec {
  numLayers: number;
  numKvHeads: number;
  /** The replica's layouts (prefill, decode); each must have deviceHosts.length devices. */
  layouts: readonly KvReplicaLayout[];
  /** Host of each of the replica's devices, by local index. */
  deviceHosts: readonly string[];
  /** The host whose store forwards. */
  host: string;
}

/** One part to forward: a box of layers x KV heads (all of the stored box's tokens). */
export interface KvForward {
  host: string;
  layers: Range;
  heads: Range;
}

interface OwnedBox {
  host: string;
  layers: Range;
  heads: Range;
}

function intersect(a: Range, b: Range): Range | undefined {
  const start = Math.max(a.start, b.start);
  const end = Math.min(a.end, b.end);
  return start < end ? { start, end } : undefined;
}

function sameRange(a: Range, b: Range): boolean {
  return a.start === b.start && a.end === b.end;
}

/**
 * The forwarding table of one store: the boxes owned by devices on other hosts. A replica wholly
 * on this host has none, and then the store forwards nothing.
 */
export class KvForwardingTable {
  private readonly remoteBoxes: OwnedBox[] = [];

  constructor(readonly spec: KvForwardingSpec) {
    const { numLayers, numKvHeads, layouts, deviceHosts, host } = spec;
    for (const { tp, pp } of layouts) {
      if (!(Number.isInteger(tp) && Number.isInteger(pp) && tp >= 1 && pp >= 1)) {
        throw new RangeError(`KV forwarding: layout T${tp}P${pp} is not a layout`);
      }
      if (tp * pp !== deviceHosts.length) {
        throw new RangeError(
          `KV forwarding: layout T${tp}P${pp} has ${tp * pp} devices, the replica ${deviceHosts.length}`,
        );
      }
      if (numKvHeads % tp !== 0 || numLayers < pp) {
        throw new RangeError(
          `KV forwarding: T${tp}P${pp} does not split ${numLayers} layers x ${numKvHeads} KV heads`,
        );
      }
      deviceHosts.forEach((deviceHost, local) => {
        if (deviceHost === host) return;
        this.remoteBoxes.push({
          host: deviceHost,
          layers: balancedRange(numLayers, pp, Math.floor(local / tp)),
          heads: balancedRange(numKvHeads, tp, local % tp),
        });
      });
    }
  }

  /** Whether this store ever forwards (some device of the replica is on another host). */
  get isEmpty(): boolean {
    return this.remoteBoxes.length === 0;
  }

  /** The other hosts this store forwards to, sorted. */
  get hosts(): string[] {
    return [...new Set(this.remoteBoxes.map((box) => box.host))].sort();
  }

  /**
   * The parts of a stored box of `layers` x `heads` to forward: per host, disjoint boxes that
   * together cover exactly the cells some device of that host owns under either layout.
   */
  forwardsFor(layers: Range, heads: Range): KvForward[] {
    const out: KvForward[] = [];
    for (const host of this.hosts) {
      const owned: OwnedBox[] = [];
      for (const box of this.remoteBoxes) {
        if (box.host !== host) continue;
        const l = intersect(box.layers, layers);
        const h = intersect(box.heads, heads);
        if (l && h) owned.push({ host, layers: l, heads: h });
      }
      out.push(...disjointCover(host, owned));
    }
    return out;
  }
}

/** Cuts at every box edge along one axis, sorted. */
function edges(boxes: readonly OwnedBox[], axis: 'layers' | 'heads'): number[] {
  const cuts = new Set<number>();
  for (const box of boxes) {
    cuts.add(box[axis].start);
    cuts.add(box[axis].end);
  }
  return [...cuts].sort((a, b) => a - b);
}

/**
 * The union of possibly overlapping boxes as disjoint boxes: the grid of their edges, each layer
 * band's covered head runs merged, then equal runs of adjacent layer bands merged.
 */
function disjointCover(host: string, boxes: readonly OwnedBox[]): KvForward[] {
  if (boxes.length === 0) return [];
  const layerCuts = edges(boxes, 'layers');
  const headCuts = edges(boxes, 'heads');
  const covers = (layer: number, head: number) =>
    boxes.some(
      (b) => b.layers.start <= layer && layer < b.layers.end && b.heads.start <= head && head < b.heads.end,
    );
  const out: KvForward[] = [];
  let open: KvForward[] = [];
  for (let i = 0; i + 1 < layerCuts.length; i++) {
    const band = { start: layerCuts[i]!, end: layerCuts[i + 1]! };
    const runs: Range[] = [];
    for (let j = 0; j + 1 < headCuts.length; j++) {
      if (!covers(band.start, headCuts[j]!)) continue;
      const last = runs[runs.length - 1];
      if (last && last.end === headCuts[j]) last.end = headCuts[j + 1]!;
      else runs.push({ start: headCuts[j]!, end: headCuts[j + 1]! });
    }
    const next: KvForward[] = [];
    for (const heads of runs) {
      const above = open.find((box) => sameRange(box.heads, heads));
      if (above) {
        above.layers = { start: above.layers.start, end: band.end };
        next.push(above);
      } else next.push({ host, layers: band, heads });
    }
    // Boxes not continued by this band are finished.
    for (const box of open) if (!next.includes(box)) out.push(box);
    open = next;
  }
  out.push(...open);
  return out;
}
