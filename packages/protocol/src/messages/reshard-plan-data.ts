/**
 * One device's part of a re-shard plan as it travels inside a `reshard` message: plain data,
 * defined here once; @seesaw/model's planner names these types (DeviceReshardPlan, TensorSlice,
 * ShardPosition, ...) and builds them. The check below validates a plan structurally and for
 * internal consistency; whether the pieces make up the right shard is the planner's business.
 */

import { arrayOf, type Check, checkFields, count, finite, int, object, oneOf, str } from '../check.ts';

/** Rows [start, end) (elements of a 1-D tensor) or columns [start, end) of one checkpoint tensor. */
export interface TensorSliceData {
  name: string;
  axis: 'rows' | 'columns';
  start: number;
  end: number;
}

export interface ShardPositionData {
  tp: number;
  tpRank: number;
  pp: number;
  ppStage: number;
}

export type PieceSourceData = { kind: 'keep' } | { kind: 'peer'; device: number } | { kind: 'host' };

export interface ReshardPieceData {
  slice: TensorSliceData;
  source: PieceSourceData;
  /** Raw checkpoint bytes of the piece. */
  bytes: number;
  /** Ordering unit: 0 embedding, 1 + layer, L + 1 final norm, L + 2 lm head. */
  unit: number;
}

export interface PieceSendData {
  /** Receiving device (local index in the replica). */
  to: number;
  slice: TensorSliceData;
  bytes: number;
  /** The receiver's piece unit. */
  unit: number;
}

export interface DeviceReshardPlanData {
  /** Local index in the replica. */
  device: number;
  from: ShardPositionData;
  to: ShardPositionData;
  /** Every piece of the target shard, sorted by unit. */
  pieces: ReshardPieceData[];
  /** What this device sends to peers, sorted by unit. */
  sends: PieceSendData[];
  bytesKept: number;
  bytesReceived: number;
  bytesSent: number;
  bytesFromHost: number;
  /** Old + new weight bytes held at the worst moment if the device frees each old unit once its
   * sends of that unit are posted and the new unit is assembled (unit order). */
  peakWeightBytes: number;
  /** Modelled seconds for this device (its incoming and outgoing queues at the link rates). */
  seconds: number;
}

const MAX_DEGREE = 4096;
const MAX_TENSOR_NAME = 512;
const MAX_PIECES = 1 << 20;

export const tensorSliceName: Check = str(MAX_TENSOR_NAME, /^[\w.-]+$/);
export const sliceAxis: Check = oneOf('rows', 'columns');

/** A non-empty slice: start < end. */
export const tensorSliceData: Check = (value, path) => {
  const error = checkFields(value, path, {
    required: { name: tensorSliceName, axis: sliceAxis, start: count, end: count },
  });
  if (error) return error;
  const slice = value as TensorSliceData;
  return slice.start < slice.end ? undefined : `${path}: empty slice [${slice.start}, ${slice.end})`;
};

/** A shard position: tp, tpRank in [0, tp), pp, ppStage in [0, pp). */
export const shardPosition: Check = (value, path) => {
  const error = checkFields(value, path, {
    required: { tp: int(1, MAX_DEGREE), tpRank: count, pp: int(1, MAX_DEGREE), ppStage: count },
  });
  if (error) return error;
  const p = value as ShardPositionData;
  if (p.tpRank >= p.tp) return `${path}: tpRank ${p.tpRank} outside [0, ${p.tp})`;
  if (p.ppStage >= p.pp) return `${path}: ppStage ${p.ppStage} outside [0, ${p.pp})`;
  return undefined;
};

const PEER_DEVICE: ReadonlySet<string> = new Set(['device']);

const pieceSource: Check = (value, path) => {
  const kindError = checkFields(
    value,
    path,
    { required: { kind: oneOf('keep', 'peer', 'host') } },
    PEER_DEVICE,
  );
  if (kindError) return kindError;
  const kind = (value as { kind: string }).kind;
  return kind === 'peer'
    ? checkFields(value, path, { required: { kind: oneOf('peer'), device: count } })
    : checkFields(value, path, { required: { kind: oneOf(kind) } });
};

const piece = object({ slice: tensorSliceData, source: pieceSource, bytes: count, unit: count });
const send = object({ to: count, slice: tensorSliceData, bytes: count, unit: count });

const planFields = object({
  device: count,
  from: shardPosition,
  to: shardPosition,
  pieces: arrayOf(piece, MAX_PIECES),
  sends: arrayOf(send, MAX_PIECES),
  bytesKept: count,
  bytesReceived: count,
  bytesSent: count,
  bytesFromHost: count,
  peakWeightBytes: count,
  seconds: finite(0),
});

function isSortedByUnit(items: ReadonlyArray<{ unit: number }>): boolean {
  return items.every((item, i) => i === 0 || items[i - 1]!.unit <= item.unit);
}

/**
 * A DeviceReshardPlan: fields, then cross-field consistency: both layouts have the same number
 * of devices and the device is one of them, peers are other devices of the replica, pieces and
 * sends are sorted by unit, and the byte totals are the sums of the pieces and sends.
 */
export const deviceReshardPlanData: Check = (value, path) => {
  const error = planFields(value, path);
  if (error) return error;
  const plan = value as DeviceReshardPlanData;
  const numDevices = plan.from.tp * plan.from.pp;
  if (plan.to.tp * plan.to.pp !== numDevices) {
    return `${path}: from has ${numDevices} devices but to has ${plan.to.tp * plan.to.pp}`;
  }
  if (plan.device >= numDevices) return `${path}.device: ${plan.device} outside [0, ${numDevices})`;
  const totals = { keep: 0, peer: 0, host: 0 };
  for (let i = 0; i < plan.pieces.length; i++) {
    const { source, bytes } = plan.pieces[i]!;
    if (source.kind === 'peer' && (source.device === plan.device || source.device >= numDevices)) {
      return `${path}.pieces[${i}].source.device: ${source.device} is not another device of [0, ${numDevices})`;
    }
    totals[source.kind] += bytes;
  }
  let sent = 0;
  for (let i = 0; i < plan.sends.length; i++) {
    const { to, bytes } = plan.sends[i]!;
    if (to === plan.device || to >= numDevices) {
      return `${path}.sends[${i}].to: ${to} is not another device of [0, ${numDevices})`;
    }
    sent += bytes;
  }
  if (!isSortedByUnit(plan.pieces)) return `${path}.pieces: not sorted by unit`;
  if (!isSortedByUnit(plan.sends)) return `${path}.sends: not sorted by unit`;
  const mismatches: Array<[string, number, number]> = [
    ['bytesKept', plan.bytesKept, totals.keep],
    ['bytesReceived', plan.bytesReceived, totals.peer],
    ['bytesFromHost', plan.bytesFromHost, totals.host],
    ['bytesSent', plan.bytesSent, sent],
  ];
  for (const [field, stated, summed] of mismatches) {
    if (stated !== summed) return `${path}.${field}: ${stated} but its pieces sum to ${summed}`;
  }
  return undefined;
};
