import { join } from 'node:path';
import { deviceRanks, type ParallelConfig, parseParallelConfig } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { expectedTensors } from './expected-tensors.ts';
import type { ModelConfig } from './model-config.ts';
import { loadModelConfig } from './model-location.ts';
import {
  type DeviceReshardPlan,
  planReshard,
  type ReshardLinkRates,
  type ReshardPlan,
  ReshardPlanError,
  type ReshardRoute,
  type TensorBytesInfo,
} from './reshard-plan.ts';
import { type ShardPosition, shardSpec, type TensorSlice } from './sharding.ts';

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');
const tiny = loadModelConfig(FIXTURE);

const CONFIGS: Record<string, ModelConfig> = {
  tiny,
  tied: { ...tiny, tieWordEmbeddings: true },
  bias: { ...tiny, attentionBias: true },
  // Uneven splits: 5 layers over 2 or 4 stages, 2045 vocabulary rows over 2 or 4 ranks.
  uneven: { ...tiny, numLayers: 5, vocabSize: 2045, tieWordEmbeddings: true },
};
const LAYOUTS_BY_DEVICES = [
  ['P2', 'T2'],
  ['P4', 'T4', 'T2P2'],
];
const RATES: ReshardLinkRates = { p2pBytesPerSecond: 4e9, hostBytesPerSecond: 2e9 };
const ROUTES: ReshardRoute[] = ['p2p', 'host', 'auto'];

/** Checkpoint header of a config: bf16 matrices, f32 vectors (mixed dtypes on purpose). */
function headerOf(config: ModelConfig): (name: string) => TensorBytesInfo {
  const shapes = new Map(expectedTensors(config).map((t) => [t.name, t.shape]));
  return (name) => {
    const shape = shapes.get(name);
    if (!shape) throw new Error(`no tensor ${name}`);
    return { dtypeBytes: shape.length === 1 ? 4 : 2, shape };
  };
}

/** The rectangle of a 2-D tensor a slice covers; a 1-D tensor is one column. */
interface Rect {
  r0: number;
  r1: number;
  c0: number;
  c1: number;
}

function rectOf(slice: TensorSlice, shape: number[]): Rect {
  if (shape.length === 1) return { r0: slice.start, r1: slice.end, c0: 0, c1: 1 };
  return slice.axis === 'rows'
    ? { r0: slice.start, r1: slice.end, c0: 0, c1: shape[1]! }
    : { r0: 0, r1: shape[0]!, c0: slice.start, c1: slice.end };
}

function rectContains(outer: Rect, inner: Rect): boolean {
  return outer.r0 <= inner.r0 && inner.r1 <= outer.r1 && outer.c0 <= inner.c0 && inner.c1 <= outer.c1;
}

function rectArea(r: Rect): number {
  return (r.r1 - r.r0) * (r.c1 - r.c0);
}

interface Held {
  slice: TensorSlice;
  unit: number;
}

/** What a shard holds, with units, written from the spec's roles (not via the planner's helper). */
function heldOf(config: ModelConfig, position: ShardPosition): Held[] {
  const spec = shardSpec(config, position);
  const L = config.numLayers;
  const held: Held[] = [];
  const push = (slice: TensorSlice | undefined, unit: number) => {
    if (!slice) return;
    const same = (h: Held) =>
      h.slice.name === slice.name &&
      h.slice.axis === slice.axis &&
      h.slice.start === slice.start &&
      h.slice.end === slice.end;
    if (!held.some(same)) held.push({ slice, unit });
  };
  push(spec.embedding, 0);
  for (const layer of spec.layerSlices) {
    for (const [key, value] of Object.entries(layer)) {
      if (key !== 'layer') push(value as TensorSlice, layer.layer + 1);
    }
  }
  push(spec.finalNorm, L + 1);
  push(spec.lmHead, L + 2);
  return held;
}

function positionsOf(parallel: ParallelConfig): ShardPosition[] {
  return deviceRanks({ ...parallel, dp: 1 }).map((r) => ({
    tp: parallel.tp,
    tpRank: r.tpRank,
    pp: parallel.pp,
    ppStage: r.ppStage,
  }));
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/**
 * Old + new bytes, allocating new unit u before freeing old unit u, new bytes taken from the
 * pieces; the embedding or final norm a device holds whole under both layouts, all of it kept,
 * stays in place (held once).
 */
function simulatePeak(config: ModelConfig, old: Held[], plan: DeviceReshardPlan): number {
  const header = headerOf(config);
  const bytes = (h: Held) =>
    rectArea(rectOf(h.slice, header(h.slice.name).shape)) * header(h.slice.name).dtypeBytes;
  const [fromSpec, toSpec] = [shardSpec(config, plan.from), shardSpec(config, plan.to)];
  const allKept = (unit: number) => plan.pieces.every((p) => p.unit !== unit || p.source.kind === 'keep');
  const same = (a: TensorSlice | undefined, b: TensorSlice | undefined) =>
    a !== undefined && JSON.stringify(a) === JSON.stringify(b);
  const inPlace = new Set<number>();
  if (same(fromSpec.embedding, toSpec.embedding) && allKept(0)) inPlace.add(0);
  const finalNormUnit = config.numLayers + 1;
  if (same(fromSpec.finalNorm, toSpec.finalNorm) && allKept(finalNormUnit)) inPlace.add(finalNormUnit);
  const events: Array<{ at: number; delta: number }> = [];
  for (const h of old) if (!inPlace.has(h.unit)) events.push({ at: 2 * h.unit + 1, delta: -bytes(h) });
  for (const p of plan.pieces) if (!inPlace.has(p.unit)) events.push({ at: 2 * p.unit, delta: p.bytes });
  events.sort((a, b) => a.at - b.at);
  let held = sum(old.map(bytes));
  let peak = held;
  for (const e of events) {
    held += e.delta;
    peak = Math.max(peak, held);
  }
  expect(held).toBe(plan.bytesKept + plan.bytesReceived + plan.bytesFromHost);
  return peak;
}

/** Every property a plan must have, checked from the shard specs alone. */
function checkPlan(config: ModelConfig, plan: ReshardPlan, route: ReshardRoute): void {
  const header = headerOf(config);
  const fromPositions = positionsOf(plan.from);
  const toPositions = positionsOf(plan.to);
  const oldHeld = fromPositions.map((p) => heldOf(config, p));
  expect(plan.devices.map((d) => d.device)).toEqual(fromPositions.map((_, i) => i));
  const peerPieces: string[] = [];
  const sends: string[] = [];
  for (const device of plan.devices) {
    const d = device.device;
    expect(device.from).toEqual(fromPositions[d]);
    expect(device.to).toEqual(toPositions[d]);
    const targets = heldOf(config, toPositions[d]!);
    // Tiling: the pieces of each target slice run from its start to its end without gap or overlap.
    let matched = 0;
    for (const target of targets) {
      const mine = device.pieces
        .filter((p) => p.slice.name === target.slice.name && p.unit === target.unit)
        .sort((a, b) => a.slice.start - b.slice.start);
      matched += mine.length;
      let at = target.slice.start;
      for (const piece of mine) {
        expect(piece.slice.axis).toBe(target.slice.axis);
        expect(piece.slice.start).toBe(at);
        expect(piece.slice.end).toBeGreaterThan(at);
        at = piece.slice.end;
      }
      expect(at, `${target.slice.name} unit ${target.unit} on device ${d}`).toBe(target.slice.end);
    }
    expect(matched).toBe(device.pieces.length);
    for (let i = 1; i < device.pieces.length; i++)
      expect(device.pieces[i]!.unit).toBeGreaterThanOrEqual(device.pieces[i - 1]!.unit);
    for (let i = 1; i < device.sends.length; i++)
      expect(device.sends[i]!.unit).toBeGreaterThanOrEqual(device.sends[i - 1]!.unit);

    for (const piece of device.pieces) {
      const info = header(piece.slice.name);
      const rect = rectOf(piece.slice, info.shape);
      expect(piece.bytes).toBe(rectArea(rect) * info.dtypeBytes);
      // A kept or peer piece lies inside one old slice of its holder that is still held at its unit.
      const holder =
        piece.source.kind === 'keep' ? d : piece.source.kind === 'peer' ? piece.source.device : -1;
      if (holder >= 0) {
        expect(holder === d).toBe(piece.source.kind === 'keep');
        const covered = oldHeld[holder]!.some(
          (h) =>
            h.slice.name === piece.slice.name &&
            h.unit >= piece.unit &&
            rectContains(rectOf(h.slice, info.shape), rect),
        );
        expect(covered, `${JSON.stringify(piece)} on device ${d}`).toBe(true);
      } else {
        // Host pieces only where the device itself could not keep the data.
        const ownCovered = oldHeld[d]!.some(
          (h) =>
            h.slice.name === piece.slice.name &&
            h.unit >= piece.unit &&
            rectContains(rectOf(h.slice, info.shape), rect),
        );
        expect(ownCovered).toBe(false);
      }
      if (piece.source.kind === 'peer') {
        peerPieces.push(JSON.stringify([piece.source.device, d, piece.slice, piece.bytes, piece.unit]));
      }
    }
    for (const send of device.sends)
      sends.push(JSON.stringify([d, send.to, send.slice, send.bytes, send.unit]));

    const bytesOf = (kind: string) =>
      sum(device.pieces.filter((p) => p.source.kind === kind).map((p) => p.bytes));
    expect(device.bytesKept).toBe(bytesOf('keep'));
    expect(device.bytesReceived).toBe(bytesOf('peer'));
    expect(device.bytesFromHost).toBe(bytesOf('host'));
    expect(device.bytesSent).toBe(sum(device.sends.map((s) => s.bytes)));
    const targetBytes = sum(
      targets.map(
        (t) => rectArea(rectOf(t.slice, header(t.slice.name).shape)) * header(t.slice.name).dtypeBytes,
      ),
    );
    expect(device.bytesKept + device.bytesReceived + device.bytesFromHost).toBe(targetBytes);
    expect(device.peakWeightBytes).toBe(simulatePeak(config, oldHeld[d]!, device));
    if (route === 'host') expect(device.bytesReceived + device.bytesSent).toBe(0);
    // Every tensor the new layout needs exists somewhere in the old one: p2p never reads the host.
    if (route === 'p2p') expect(device.bytesFromHost).toBe(0);
  }
  // Sends are the mirror image of peer pieces, one for one.
  expect(sends.sort()).toEqual(peerPieces.sort());
  expect(plan.bytesMoved).toBe(sum(plan.devices.map((d) => d.bytesReceived + d.bytesFromHost)));
  expect(plan.seconds).toBe(Math.max(...plan.devices.map((d) => d.seconds)));
}

function plan(
  config: ModelConfig,
  from: string,
  to: string,
  route: ReshardRoute,
  rates: ReshardLinkRates = RATES,
  deviceMemoryBytes?: number,
): ReshardPlan {
  const options = { route, rates, ...(deviceMemoryBytes === undefined ? {} : { deviceMemoryBytes }) };
  return planReshard(config, headerOf(config), parseParallelConfig(from), parseParallelConfig(to), options);
}

describe('planReshard', () => {
  for (const [configName, config] of Object.entries(CONFIGS)) {
    it(`tiles, mirrors and counts every pair of layouts (${configName})`, () => {
      for (const layouts of LAYOUTS_BY_DEVICES) {
        for (const from of layouts) {
          for (const to of layouts) {
            for (const route of ROUTES) checkPlan(config, plan(config, from, to, route), route);
          }
        }
      }
    });
  }

  it('keeps everything and moves nothing when the layout does not change', () => {
    for (const layout of ['P2', 'T2', 'P4', 'T4', 'T2P2', 'D1']) {
      for (const route of ROUTES) {
        const same = plan(CONFIGS.tied!, layout, layout, route);
        expect(same.bytesMoved).toBe(0);
        expect(same.seconds).toBe(0);
        for (const device of same.devices) {
          expect(device.pieces.every((p) => p.source.kind === 'keep')).toBe(true);
          expect(device.sends).toEqual([]);
          expect(device.bytesSent + device.bytesReceived + device.bytesFromHost).toBe(0);
        }
      }
    }
  });

  it('plans per replica: D2P2 <-> D2T2 gives the P2 <-> T2 plan', () => {
    for (const [from, to] of [
      ['P2', 'T2'],
      ['T2', 'P2'],
    ]) {
      const replicated = plan(tiny, `D2${from}`, `D2${to}`, 'auto');
      const single = plan(tiny, from, to, 'auto');
      checkPlan(tiny, replicated, 'auto');
      expect(replicated.from.dp).toBe(2);
      expect(replicated.devices).toEqual(single.devices);
    }
  });

  it('moves exactly the parts a device lacks: P2 -> T2 on the tiny model', () => {
    const p2p = plan(tiny, 'P2', 'T2', 'p2p');
    const [d0, d1] = p2p.devices;
    // Device 1 (old stage 1: layers 2-3, norm, lm_head) gets the whole embedding and half of layers 0-1.
    const embedding = d1!.pieces.filter((p) => p.slice.name === 'model.embed_tokens.weight');
    expect(embedding).toEqual([
      {
        slice: { name: 'model.embed_tokens.weight', axis: 'rows', start: 0, end: 2048 },
        source: { kind: 'peer', device: 0 },
        bytes: 2048 * 256 * 2,
        unit: 0,
      },
    ]);
    const o = d1!.pieces.find((p) => p.slice.name === 'model.layers.0.self_attn.o_proj.weight');
    expect(o).toEqual({
      slice: { name: 'model.layers.0.self_attn.o_proj.weight', axis: 'columns', start: 128, end: 256 },
      source: { kind: 'peer', device: 0 },
      bytes: 256 * 128 * 2,
      unit: 1,
    });
    expect(d0!.pieces.find((p) => p.slice.name === 'model.layers.3.mlp.down_proj.weight')?.source).toEqual({
      kind: 'peer',
      device: 1,
    });
    // Each device holds half of the layer weights it did not have, plus the embedding for device 1.
    expect(d1!.bytesReceived).toBe(d0!.bytesSent);
    expect(d0!.bytesReceived).toBe(d1!.bytesSent);
  });

  it("'auto' picks peers when p2p is much faster and the host when the host is", () => {
    const fastPeers = { p2pBytesPerSecond: 1e12, hostBytesPerSecond: 1e6 };
    const fastHost = { p2pBytesPerSecond: 1e6, hostBytesPerSecond: 1e12 };
    for (const [from, to] of [
      ['P2', 'T2'],
      ['T4', 'P4'],
      ['T2P2', 'P4'],
    ]) {
      const viaPeers = plan(CONFIGS.bias!, from!, to!, 'auto', fastPeers);
      expect(viaPeers.devices.every((d) => d.bytesFromHost === 0)).toBe(true);
      expect(viaPeers.bytesMoved).toBeGreaterThan(0);
      const viaHost = plan(CONFIGS.bias!, from!, to!, 'auto', fastHost);
      expect(viaHost.devices.every((d) => d.bytesReceived === 0 && d.sends.length === 0)).toBe(true);
      expect(viaHost.bytesMoved).toBe(viaPeers.bytesMoved);
      // Each is no slower than the forced single route.
      expect(viaPeers.seconds).toBeLessThanOrEqual(plan(CONFIGS.bias!, from!, to!, 'p2p', fastPeers).seconds);
      expect(viaHost.seconds).toBeLessThanOrEqual(plan(CONFIGS.bias!, from!, to!, 'host', fastHost).seconds);
    }
    // Equal rates: the greedy spreads the load over both links, beating either route alone.
    const equal = { p2pBytesPerSecond: 1e9, hostBytesPerSecond: 1e9 };
    const mixed = plan(tiny, 'P2', 'T2', 'auto', equal);
    expect(mixed.devices.some((d) => d.bytesFromHost > 0)).toBe(true);
    expect(mixed.devices.some((d) => d.bytesReceived > 0)).toBe(true);
    expect(mixed.seconds).toBeLessThan(plan(tiny, 'P2', 'T2', 'host', equal).seconds);
    expect(mixed.seconds).toBeLessThan(plan(tiny, 'P2', 'T2', 'p2p', equal).seconds);
  });

  it('reloads every piece from the host with isHeldReloaded (the host weight cache), held ones too', () => {
    for (const [from, to] of [
      ['P2', 'T2'],
      ['T2', 'P2'],
      ['T2P2', 'P4'],
      ['P2', 'P2'],
    ]) {
      const parse = parseParallelConfig;
      const options = { route: 'host' as const, rates: RATES, isHeldReloaded: true };
      const reload = planReshard(tiny, headerOf(tiny), parse(from!), parse(to!), options);
      const keep = plan(tiny, from!, to!, 'host');
      reload.devices.forEach((device, d) => {
        const what = `${from} -> ${to} device ${d}`;
        expect(
          device.pieces.every((p) => p.source.kind === 'host'),
          what,
        ).toBe(true);
        expect(device.bytesKept + device.bytesReceived + device.bytesSent, what).toBe(0);
        // The same new shard, all of it now over the host link.
        const kept = keep.devices[d]!;
        expect(device.bytesFromHost, what).toBe(kept.bytesKept + kept.bytesFromHost);
        // Nothing is kept in place when every piece is reloaded: old and new both held at the peak.
        expect(device.peakWeightBytes, what).toBe(simulatePeak(tiny, heldOf(tiny, device.from), device));
        expect(device.peakWeightBytes, what).toBeGreaterThanOrEqual(kept.peakWeightBytes);
      });
      // Only the host route reloads: the option leaves p2p and auto plans alone.
      for (const route of ['p2p', 'auto'] as const)
        expect(planReshard(tiny, headerOf(tiny), parse(from!), parse(to!), { ...options, route })).toEqual(
          plan(tiny, from!, to!, route),
        );
    }
  });

  it("models seconds as each device's busiest link queue", () => {
    const rates = {
      p2pBytesPerSecond: 3e9,
      hostBytesPerSecond: 1e9,
      p2pLatencySeconds: 1e-5,
      hostLatencySeconds: 2e-5,
    };
    const result = plan(tiny, 'T4', 'P4', 'auto', rates);
    for (const device of result.devices) {
      const hostIn = sum(
        device.pieces.filter((p) => p.source.kind === 'host').map((p) => 2e-5 + p.bytes / 1e9),
      );
      const peerIn = sum(
        device.pieces.filter((p) => p.source.kind === 'peer').map((p) => 1e-5 + p.bytes / 3e9),
      );
      const peerOut = sum(device.sends.map((s) => 1e-5 + s.bytes / 3e9));
      expect(device.seconds).toBeCloseTo(Math.max(hostIn, peerIn, peerOut), 12);
    }
  });

  it('never cuts a tied lm head from an old embedding (freed at unit 0)', () => {
    const config = CONFIGS.tied!;
    // T2 -> P2: device 1 becomes the last stage and needs all 2048 lm-head rows of embed_tokens;
    // its old T2 shard has the whole embedding (unit 0) but only lm-head rows [1024, 2048).
    const result = plan(config, 'T2', 'P2', 'p2p');
    const lmHead = result.devices[1]!.pieces.filter((p) => p.unit === config.numLayers + 2);
    expect(lmHead.map((p) => [p.slice.start, p.slice.end, p.source])).toEqual([
      [0, 1024, { kind: 'peer', device: 0 }],
      [1024, 2048, { kind: 'keep' }],
    ]);
  });

  it('is deterministic and holds its properties on fresh random models and rates', () => {
    const seed = Math.floor(Math.random() * 2 ** 31);
    let state = seed;
    const random = () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state / 2 ** 32;
    };
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    for (let trial = 0; trial < 12; trial++) {
      const numKvHeads = pick([1, 2, 4]);
      const config: ModelConfig = {
        ...tiny,
        numKvHeads,
        numHeads: numKvHeads * pick([1, 2, 4]),
        headDim: pick([4, 8]),
        hiddenSize: pick([16, 32]),
        intermediateSize: pick([8, 24, 40]),
        numLayers: pick([4, 5, 7]),
        vocabSize: 64 + Math.floor(random() * 64),
        tieWordEmbeddings: random() < 0.5,
        attentionBias: random() < 0.5,
      };
      const numDevices = pick([2, 4]);
      const layouts = [1, 2, 4]
        .filter(
          (tp) => tp <= numDevices && config.numKvHeads % tp === 0 && config.intermediateSize % tp === 0,
        )
        .map((tp) => `T${tp}P${numDevices / tp}`);
      const from = pick(layouts);
      const to = pick(layouts);
      const route = pick(ROUTES);
      const rates = {
        p2pBytesPerSecond: 10 ** (6 + random() * 4),
        hostBytesPerSecond: 10 ** (6 + random() * 4),
        p2pLatencySeconds: random() * 1e-4,
        hostLatencySeconds: random() * 1e-4,
      };
      const context = `seed ${seed} trial ${trial}: ${from} -> ${to} ${route}`;
      const first = plan(config, from, to, route, rates);
      expect(plan(config, from, to, route, rates), context).toEqual(first);
      checkPlan(config, first, route);
    }
  });

  it('refuses a plan whose peak weights exceed the device memory, with a clear error', () => {
    const result = plan(tiny, 'P2', 'T2', 'auto');
    const peak = Math.max(...result.devices.map((d) => d.peakWeightBytes));
    expect(plan(tiny, 'P2', 'T2', 'auto', RATES, peak).seconds).toBe(result.seconds);
    expect(() => plan(tiny, 'P2', 'T2', 'auto', RATES, peak - 1)).toThrow(ReshardPlanError);
    expect(() => plan(tiny, 'P2', 'T2', 'auto', RATES, peak - 1)).toThrow(
      new RegExp(`P2 -> T2: device \\d holds up to ${peak} bytes .* more than its ${peak - 1} bytes`),
    );
  });

  it('rejects layouts that cannot shard the model or do not match, naming the reason', () => {
    const gqa = { ...tiny, numKvHeads: 2 };
    expect(() => plan(gqa, 'P4', 'T4', 'auto')).toThrow(ReshardPlanError);
    expect(() => plan(gqa, 'P4', 'T4', 'auto')).toThrow(
      /P4 -> T4: T4 cannot shard this model: 2 KV heads do not divide by TP 4/,
    );
    expect(() => plan(tiny, 'D2T2', 'T4', 'auto')).toThrow(/data parallelism must stay the same/);
    expect(() => plan(tiny, 'P2', 'P4', 'auto')).toThrow(/2 devices before and 4 after/);
    expect(() => plan(tiny, 'P2', 'T2', 'auto', { p2pBytesPerSecond: 0, hostBytesPerSecond: 1 })).toThrow(
      /p2pBytesPerSecond must be a positive/,
    );
    expect(() => plan(tiny, 'P2', 'T2', 'ring' as ReshardRoute)).toThrow(/route must be/);
    const shrunk = (name: string): TensorBytesInfo => {
      const info = headerOf(tiny)(name);
      return name === 'lm_head.weight' ? { ...info, shape: [1000, 256] } : info;
    };
    expect(() =>
      planReshard(tiny, shrunk, parseParallelConfig('P2'), parseParallelConfig('T2'), {
        route: 'auto',
        rates: RATES,
      }),
    ).toThrow(/rows \[0, 2048\) of "lm_head.weight" lies outside its 1000 rows/);
  });
});
