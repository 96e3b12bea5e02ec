/**
 * Ordering units of a re-shard and the ranges a target slice can be served from.
 * Units: 0 = embedding, 1 + l = decoder layer l, L + 1 = final norm, L + 2 = lm head.
 */
import type { ModelConfig } from './model-config.ts';
import { covers, intersect, isSameSlice, rangeAlong } from './reshard-intersect.ts';
import type { IndexRange, ShardSpec, TensorSlice } from './sharding.ts';

/** One slice a shard holds, with its ordering unit. */
export interface UnitSlice {
  slice: TensorSlice;
  unit: number;
}

/** Units of a model: embedding, one per layer, final norm, lm head. */
export function reshardUnitCount(config: ModelConfig): number {
  return config.numLayers + 3;
}

/**
 * A shard's slices with their units, in unit order. A slice identical to an earlier one (a tied
 * lm head that is the whole embedding, single-device layouts only) is held once and listed once.
 */
export function shardUnitSlices(config: ModelConfig, spec: ShardSpec): UnitSlice[] {
  const out: UnitSlice[] = [];
  const add = (slice: TensorSlice | undefined, unit: number): void => {
    if (slice && !out.some((held) => isSameSlice(held.slice, slice))) out.push({ slice, unit });
  };
  add(spec.embedding, 0);
  for (const layer of spec.layerSlices) {
    const { inputNorm, q, k, v, qBias, kBias, vBias, o, postAttentionNorm, gate, up, down } = layer;
    for (const slice of [inputNorm, q, k, v, qBias, kBias, vBias, o, postAttentionNorm, gate, up, down]) {
      add(slice, 1 + layer.layer);
    }
  }
  add(spec.finalNorm, config.numLayers + 1);
  add(spec.lmHead, config.numLayers + 2);
  return out;
}

/**
 * Units a device keeps whole and in place across a switch, with no copy: the embedding table or
 * the final norm when it holds exactly the same slices of it under both layouts and every piece
 * of the unit is kept (a host route that reloads held pieces keeps none). Decoder layers never
 * are: their fused matrices are cut differently under the two layouts. The planner's peak and
 * the executor's assembly both go by this one rule.
 */
export function unitsKeptInPlace(
  numUnits: number,
  oldHeld: UnitSlice[],
  newHeld: UnitSlice[],
  pieces: ReadonlyArray<{ unit: number; source: { kind: string } }>,
): Set<number> {
  const out = new Set<number>();
  for (const unit of [0, numUnits - 2]) {
    const olds = oldHeld.filter((held) => held.unit === unit);
    const news = newHeld.filter((held) => held.unit === unit);
    if (news.length === 0 || olds.length !== news.length) continue;
    if (!news.every((held) => olds.some((old) => isSameSlice(old.slice, held.slice)))) continue;
    if (pieces.some((piece) => piece.unit === unit && piece.source.kind !== 'keep')) continue;
    out.add(unit);
  }
  return out;
}

/** A maximal run of a target slice's range whose possible sources do not change inside it. */
export interface Segment {
  range: IndexRange;
  isKept: boolean;
  /** Peers whose old shard holds all of the range (eligible units only). */
  peers: number[];
}

/** The old ranges of `held` that can serve `target` (same tensor, unit still held), along its axis. */
function servingRanges(held: UnitSlice[], target: UnitSlice, shape: number[]): IndexRange[] {
  const out: IndexRange[] = [];
  for (const old of held) {
    if (old.slice.name !== target.slice.name || old.unit < target.unit) continue;
    const along = rangeAlong(old.slice, target.slice.axis, shape);
    const part = along && intersect(along, target.slice);
    if (part) out.push(part);
  }
  return out;
}

export function segmentsOf(
  target: UnitSlice,
  device: number,
  oldHeld: UnitSlice[][],
  shape: number[],
  isPeerAllowed: boolean,
): Segment[] {
  const own = servingRanges(oldHeld[device]!, target, shape);
  const peerRanges = oldHeld.map((held, p) =>
    p === device || !isPeerAllowed ? [] : servingRanges(held, target, shape),
  );
  const cuts = new Set<number>([target.slice.start, target.slice.end]);
  for (const r of [...own, ...peerRanges.flat()]) cuts.add(r.start).add(r.end);
  const points = [...cuts].sort((a, b) => a - b);
  const segments: Segment[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const range = { start: points[i]!, end: points[i + 1]! };
    const isKept = own.some((r) => covers(r, range));
    const peers = isKept
      ? []
      : peerRanges.flatMap((ranges, p) => (ranges.some((r) => covers(r, range)) ? [p] : []));
    segments.push({ range, isKept, peers });
  }
  return segments;
}
