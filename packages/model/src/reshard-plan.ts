/**
 * Re-shard planning: how every device of one replica turns its weight shard under one parallel
 * configuration into its shard under another, piece by piece, from what it already holds
 * ('keep'), from a peer that holds it ('peer') or from the checkpoint on the host ('host').
 *
 * All byte counts are raw checkpoint bytes (stored dtype, 1-D tensors not widened): what a
 * WeightSlice message or a checkpoint read carries.
 *
 * Ordering units: 0 = embedding, 1 + l = decoder layer l, L + 1 = final norm, L + 2 = lm head.
 * A device runs units in order; by unit u it has posted its sends of unit u, it assembles its
 * new unit u, and frees its old unit u no earlier than that (once no peer reads it: see the
 * gpu-actor's reshard-executor.ts). Sends carry the *receiver's* unit, so no device waits on a
 * piece its peer has not posted yet. To keep the free rule that simple, a piece of unit u is
 * only ever taken from an old slice of unit >= u (still held at step u): with tied embeddings
 * a new lm head is therefore never cut from an old embedding (unit 0, already freed).
 */

import {
  type DeviceReshardPlanData,
  deviceRanks,
  formatParallelConfig,
  type ParallelConfig,
  type PieceSendData,
  type PieceSourceData,
  type ReshardPieceData,
} from '@seesaw/protocol';
import type { ModelConfig } from './model-config.ts';
import { validateForModel } from './parallel-config.ts';
import {
  checkSliceInTensor,
  ReshardPlanError,
  sliceBytes,
  type TensorBytesInfo,
} from './reshard-intersect.ts';
import { checkRates, LinkQueues, type ReshardLinkRates } from './reshard-link-queues.ts';
import {
  reshardUnitCount,
  type Segment,
  segmentsOf,
  shardUnitSlices,
  type UnitSlice,
  unitsKeptInPlace,
} from './reshard-units.ts';
import { type IndexRange, type ShardPosition, shardSpec, type TensorSlice } from './sharding.ts';

export { ReshardPlanError, type TensorBytesInfo } from './reshard-intersect.ts';
export type { ReshardLinkRates } from './reshard-link-queues.ts';
export { reshardUnitCount, shardUnitSlices, type UnitSlice, unitsKeptInPlace } from './reshard-units.ts';

// One device's plan is plain data that travels in the `reshard` message: its types are defined
// once, in @seesaw/protocol, and named here as the planner knows them.
export type PieceSource = PieceSourceData;
/** A sub-range of one of the device's target slices, same tensor and axis, and where it comes from. */
export type ReshardPiece = ReshardPieceData;
/** The mirror image of a peer piece, on the sending device. `unit` is the receiver's piece unit. */
export type PieceSend = PieceSendData;
/** Local device index, positions, pieces and sends sorted by unit, byte counts and modelled seconds. */
export type DeviceReshardPlan = DeviceReshardPlanData;

export type ReshardRoute = 'p2p' | 'host' | 'auto';

export interface ReshardPlan {
  /** Same dp; plans cover ONE replica (devices 0..N-1). */
  from: ParallelConfig;
  to: ParallelConfig;
  route: ReshardRoute;
  devices: DeviceReshardPlan[];
  /** Max over devices. */
  seconds: number;
  /** Received + from host, over devices. */
  bytesMoved: number;
}

export interface ReshardPlanOptions {
  route: ReshardRoute;
  rates: ReshardLinkRates;
  /** When given, a plan whose peakWeightBytes exceeds it on any device is refused. */
  deviceMemoryBytes?: number;
  /**
   * Route 'host' only: take every piece from the host, the ones a device holds as well (the
   * paper's reload of the pre-sharded shard from pinned host memory). Right when the host keeps
   * each layout's shard in memory (the host weight cache): the new shard is then one memory copy
   * per tensor, and its link time counts every byte that copy writes. Off (the default), held
   * pieces are kept, which pays when the host pieces come from the checkpoint.
   */
  isHeldReloaded?: boolean;
}

function replicaPositions(parallel: ParallelConfig): ShardPosition[] {
  const { tp, pp } = parallel;
  return deviceRanks({ dp: 1, tp, pp }).map((rank) => ({
    tp,
    tpRank: rank.tpRank,
    pp,
    ppStage: rank.ppStage,
  }));
}

function checkLayouts(config: ModelConfig, from: ParallelConfig, to: ParallelConfig): string {
  const names = `${formatParallelConfig(from)} -> ${formatParallelConfig(to)}`;
  if (from.dp !== to.dp) {
    throw new ReshardPlanError(`cannot re-shard ${names}: data parallelism must stay the same`);
  }
  if (from.tp * from.pp !== to.tp * to.pp) {
    throw new ReshardPlanError(
      `cannot re-shard ${names}: a replica has ${from.tp * from.pp} devices before and ${to.tp * to.pp} after`,
    );
  }
  for (const parallel of [from, to]) {
    try {
      validateForModel(parallel, config);
    } catch (error) {
      throw new ReshardPlanError(`cannot re-shard ${names}: ${(error as Error).message}`, { cause: error });
    }
  }
  return names;
}

function sameSource(a: PieceSource, b: PieceSource): boolean {
  return a.kind === b.kind && (a.kind !== 'peer' || a.device === (b as { device: number }).device);
}

/**
 * The source of one segment: kept when the device holds it; else the candidate (holding peers in
 * device order, then the host unless the route is p2p and some peer holds it) whose piece would
 * arrive first given the queues so far; the first wins a tie.
 */
function chooseSource(
  queues: LinkQueues,
  device: number,
  segment: Segment,
  route: ReshardRoute,
  bytes: number,
): PieceSource {
  if (segment.isKept) return { kind: 'keep' };
  const candidates = segment.peers.map((p): PieceSource => ({ kind: 'peer', device: p }));
  if (route !== 'p2p' || candidates.length === 0) candidates.push({ kind: 'host' });
  let best = candidates[0]!;
  let bestTime = queues.finishTime(device, best, bytes);
  for (const candidate of candidates.slice(1)) {
    const time = queues.finishTime(device, candidate, bytes);
    if (time < bestTime) [best, bestTime] = [candidate, time];
  }
  return best;
}

/**
 * Peak of old + new bytes when new unit u is assembled before old unit u is freed; a unit kept
 * in place (`inPlace`) is held once throughout.
 */
function peakBytes(
  oldHeld: UnitSlice[],
  newHeld: UnitSlice[],
  numUnits: number,
  info: (name: string) => TensorBytesInfo,
  inPlace: Set<number>,
): number {
  const oldByUnit = new Array<number>(numUnits).fill(0);
  const newByUnit = new Array<number>(numUnits).fill(0);
  for (const { slice, unit } of oldHeld) oldByUnit[unit]! += sliceBytes(slice, info(slice.name));
  for (const { slice, unit } of newHeld) newByUnit[unit]! += sliceBytes(slice, info(slice.name));
  let held = oldByUnit.reduce((a, b) => a + b, 0);
  let peak = held;
  for (let u = 0; u < numUnits; u++) {
    if (inPlace.has(u)) continue;
    held += newByUnit[u]!;
    peak = Math.max(peak, held);
    held -= oldByUnit[u]!;
  }
  return peak;
}

/**
 * Plans one replica's switch from `from` to `to` (same dp, same devices per replica). With route
 * 'host' every piece not kept (every piece, with isHeldReloaded) comes from the host; with 'p2p'
 * from a peer holding it (host only if none does); with 'auto' each piece goes, greedily in
 * unit/device/slice order, to whichever source (a holding peer, or the host) would deliver it
 * soonest given the link queues assigned so far. Ties prefer the lowest peer, then the host. Deterministic.
 */
export function planReshard(
  config: ModelConfig,
  tensorBytes: (name: string) => TensorBytesInfo,
  from: ParallelConfig,
  to: ParallelConfig,
  options: ReshardPlanOptions,
): ReshardPlan {
  const names = checkLayouts(config, from, to);
  const { route } = options;
  const isHeldReloaded = route === 'host' && options.isHeldReloaded === true;
  if (route !== 'p2p' && route !== 'host' && route !== 'auto') {
    throw new ReshardPlanError(
      `re-shard route must be 'p2p', 'host' or 'auto', got ${JSON.stringify(route)}`,
    );
  }
  const rates = checkRates(options.rates);
  const infos = new Map<string, TensorBytesInfo>();
  const info = (name: string): TensorBytesInfo => {
    let found = infos.get(name);
    if (!found) {
      found = tensorBytes(name);
      infos.set(name, found);
    }
    return found;
  };

  const fromPositions = replicaPositions(from);
  const toPositions = replicaPositions(to);
  const numDevices = fromPositions.length;
  const numUnits = reshardUnitCount(config);
  const oldHeld = fromPositions.map((position) => shardUnitSlices(config, shardSpec(config, position)));
  const newHeld = toPositions.map((position) => shardUnitSlices(config, shardSpec(config, position)));
  for (const held of [...oldHeld, ...newHeld]) {
    for (const { slice } of held) checkSliceInTensor(slice, info(slice.name));
  }

  const queues = new LinkQueues(numDevices, rates);
  const pieces: ReshardPiece[][] = newHeld.map(() => []);
  const sends: PieceSend[][] = newHeld.map(() => []);
  for (let unit = 0; unit < numUnits; unit++) {
    for (let device = 0; device < numDevices; device++) {
      for (const target of newHeld[device]!) {
        if (target.unit !== unit) continue;
        const shape = info(target.slice.name).shape;
        const chosen: Array<{ range: IndexRange; source: PieceSource }> = [];
        for (const found of segmentsOf(target, device, oldHeld, shape, route !== 'host')) {
          const segment = isHeldReloaded ? { ...found, isKept: false } : found;
          const bytes = sliceBytes({ ...target.slice, ...segment.range }, info(target.slice.name));
          const best = chooseSource(queues, device, segment, route, bytes);
          queues.add(device, best, bytes);
          const last = chosen[chosen.length - 1];
          if (last && last.range.end === segment.range.start && sameSource(last.source, best)) {
            last.range = { start: last.range.start, end: segment.range.end };
          } else chosen.push({ range: segment.range, source: best });
        }
        for (const { range, source } of chosen) {
          const slice: TensorSlice = { name: target.slice.name, axis: target.slice.axis, ...range };
          const bytes = sliceBytes(slice, info(slice.name));
          pieces[device]!.push({ slice, source, bytes, unit });
          if (source.kind === 'peer') sends[source.device]!.push({ to: device, slice, bytes, unit });
        }
      }
    }
  }

  // Seconds from the final (merged) pieces, not the greedy estimate of its per-segment latencies.
  const final = new LinkQueues(numDevices, rates);
  pieces.forEach((list, device) => {
    for (const piece of list) final.add(device, piece.source, piece.bytes);
  });
  const devices = pieces.map((list, device): DeviceReshardPlan => {
    const sum = (kind: PieceSource['kind']): number =>
      list.filter((p) => p.source.kind === kind).reduce((total, p) => total + p.bytes, 0);
    return {
      device,
      from: fromPositions[device]!,
      to: toPositions[device]!,
      pieces: list,
      sends: sends[device]!,
      bytesKept: sum('keep'),
      bytesReceived: sum('peer'),
      bytesSent: sends[device]!.reduce((total, s) => total + s.bytes, 0),
      bytesFromHost: sum('host'),
      peakWeightBytes: peakBytes(
        oldHeld[device]!,
        newHeld[device]!,
        numUnits,
        info,
        unitsKeptInPlace(numUnits, oldHeld[device]!, newHeld[device]!, list),
      ),
      seconds: final.deviceSeconds(device),
    };
  });

  const memory = options.deviceMemoryBytes;
  if (memory !== undefined) {
    for (const plan of devices) {
      if (plan.peakWeightBytes > memory) {
        throw new ReshardPlanError(
          `re-shard ${names}: device ${plan.device} holds up to ${plan.peakWeightBytes} bytes of old and new ` +
            `weights at once during the switch, more than its ${memory} bytes of device memory`,
        );
      }
    }
  }
  return {
    from: { ...from },
    to: { ...to },
    route,
    devices,
    seconds: Math.max(0, ...devices.map((d) => d.seconds)),
    bytesMoved: devices.reduce((total, d) => total + d.bytesReceived + d.bytesFromHost, 0),
  };
}
