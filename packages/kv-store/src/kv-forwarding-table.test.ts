import { describe, expect, it } from 'vitest';
import { type KvForward, KvForwardingTable, type KvReplicaLayout } from './kv-forwarding-table.ts';

/**
 * Reference: for every (layer, head) cell of the box, the hosts other than `host` with a device
 * that owns the cell under either layout, found by splitting layers and heads by hand (first
 * total % parts parts one longer).
 */
function referenceCells(
  numLayers: number,
  numKvHeads: number,
  layouts: KvReplicaLayout[],
  deviceHosts: string[],
  host: string,
  layers: { start: number; end: number },
  heads: { start: number; end: number },
): Set<string> {
  const partOf = (total: number, parts: number, item: number) => {
    let start = 0;
    for (let p = 0; p < parts; p++) {
      const size = Math.floor(total / parts) + (p < total % parts ? 1 : 0);
      if (item < start + size) return p;
      start += size;
    }
    throw new Error('item outside');
  };
  const cells = new Set<string>();
  for (let l = layers.start; l < layers.end; l++)
    for (let h = heads.start; h < heads.end; h++)
      for (const { tp, pp } of layouts) {
        const local = partOf(numLayers, pp, l) * tp + partOf(numKvHeads, tp, h);
        if (deviceHosts[local] !== host) cells.add(`${deviceHosts[local]}:${l}:${h}`);
      }
  return cells;
}

function cellsOf(forwards: KvForward[]): { cells: Set<string>; numCells: number } {
  const cells = new Set<string>();
  let numCells = 0;
  for (const f of forwards)
    for (let l = f.layers.start; l < f.layers.end; l++)
      for (let h = f.heads.start; h < f.heads.end; h++) {
        cells.add(`${f.host}:${l}:${h}`);
        numCells++;
      }
  return { cells, numCells };
}

/** Small deterministic generator (mulberry32) so a failure can be replayed from its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('KvForwardingTable', () => {
  it('P2 <-> T2 over two hosts: a stage-0 write-back sends host-b the heads its T2 rank owns', () => {
    const table = new KvForwardingTable({
      numLayers: 4,
      numKvHeads: 2,
      layouts: [
        { tp: 1, pp: 2 },
        { tp: 2, pp: 1 },
      ],
      deviceHosts: ['a', 'b'],
      host: 'a',
    });
    expect(table.hosts).toEqual(['b']);
    // Device 0 under P2 wrote layers 0-1, both heads: under T2 device 1 (host b) owns head 1.
    expect(table.forwardsFor({ start: 0, end: 2 }, { start: 0, end: 2 })).toEqual([
      { host: 'b', layers: { start: 0, end: 2 }, heads: { start: 1, end: 2 } },
    ]);
    // Device 0 under T2 wrote all layers of head 0: under P2 device 1 (host b) owns layers 2-3.
    expect(table.forwardsFor({ start: 0, end: 4 }, { start: 0, end: 1 })).toEqual([
      { host: 'b', layers: { start: 2, end: 4 }, heads: { start: 0, end: 1 } },
    ]);
  });

  it('a replica wholly on one host forwards nothing', () => {
    const table = new KvForwardingTable({
      numLayers: 4,
      numKvHeads: 4,
      layouts: [
        { tp: 1, pp: 4 },
        { tp: 4, pp: 1 },
      ],
      deviceHosts: ['a', 'a', 'a', 'a'],
      host: 'a',
    });
    expect(table.isEmpty).toBe(true);
    expect(table.forwardsFor({ start: 0, end: 4 }, { start: 0, end: 4 })).toEqual([]);
  });

  it('refuses a layout that does not fit the replica or the model', () => {
    const spec = { numLayers: 4, numKvHeads: 2, deviceHosts: ['a', 'b'], host: 'a' };
    expect(() => new KvForwardingTable({ ...spec, layouts: [{ tp: 4, pp: 1 }] })).toThrow(
      /has 4 devices, the replica 2/,
    );
    expect(() => new KvForwardingTable({ ...spec, numKvHeads: 3, layouts: [{ tp: 2, pp: 1 }] })).toThrow(
      /does not split 4 layers x 3 KV heads/,
    );
  });

  it('equals the per-cell reference, each cell once, on random replicas and boxes', () => {
    const seed = Date.now() % 1_000_000;
    console.log(`kv-forwarding-table seed ${seed}`);
    const next = random(seed);
    const pick = (n: number) => Math.floor(next() * n);
    const shapes: KvReplicaLayout[][] = [
      [
        { tp: 1, pp: 2 },
        { tp: 2, pp: 1 },
      ],
      [
        { tp: 1, pp: 4 },
        { tp: 4, pp: 1 },
      ],
      [
        { tp: 2, pp: 2 },
        { tp: 4, pp: 1 },
      ],
      [
        { tp: 2, pp: 2 },
        { tp: 1, pp: 4 },
      ],
      [
        { tp: 2, pp: 3 },
        { tp: 1, pp: 6 },
      ],
    ];
    for (let trial = 0; trial < 300; trial++) {
      const layouts = shapes[pick(shapes.length)]!;
      const numDevices = layouts[0]!.tp * layouts[0]!.pp;
      const numLayers = 6 + pick(7);
      const numKvHeads = 4 * (1 + pick(2)) * (numDevices % 3 === 0 ? 3 : 1);
      const hostNames = ['a', 'b', 'c'].slice(0, 1 + pick(3));
      const deviceHosts = Array.from({ length: numDevices }, () => hostNames[pick(hostNames.length)]!);
      const host = deviceHosts[pick(numDevices)]!;
      const l0 = pick(numLayers);
      const h0 = pick(numKvHeads);
      const layers = { start: l0, end: l0 + 1 + pick(numLayers - l0) };
      const heads = { start: h0, end: h0 + 1 + pick(numKvHeads - h0) };
      const table = new KvForwardingTable({ numLayers, numKvHeads, layouts, deviceHosts, host });
      const { cells, numCells } = cellsOf(table.forwardsFor(layers, heads));
      const context = `seed ${seed} trial ${trial}: ${JSON.stringify({ layouts, deviceHosts, host, layers, heads })}`;
      expect(cells, context).toEqual(
        referenceCells(numLayers, numKvHeads, layouts, deviceHosts, host, layers, heads),
      );
      expect(numCells, `${context}: overlapping forwards`).toBe(cells.size);
    }
  });
});
