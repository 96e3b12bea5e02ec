/**
 * Range arithmetic on tensor slices for the re-shard planner: the same checkpoint tensor may be
 * split by rows in one layout, by columns in another, or held whole, and a piece must be
 * expressed along the axis of the slice it fills.
 */
import type { IndexRange, TensorSlice } from './sharding.ts';

/** What the planner needs to know of one checkpoint tensor (from the safetensors header). */
export interface TensorBytesInfo {
  /** Bytes of one stored element (2 for bf16/f16, 4 for f32). */
  dtypeBytes: number;
  /** [n] for vectors, [rows, cols] for matrices. */
  shape: number[];
}

export class ReshardPlanError extends Error {
  override name = 'ReshardPlanError';
}

/** Number of indices along `axis`; a 1-D tensor has only rows (its elements). */
export function axisLength(shape: readonly number[], axis: TensorSlice['axis']): number {
  if (shape.length === 1) return axis === 'rows' ? shape[0]! : 0;
  return axis === 'rows' ? shape[0]! : shape[1]!;
}

/** Checks a slice lies inside its tensor along a valid axis; throws ReshardPlanError otherwise. */
export function checkSliceInTensor(slice: TensorSlice, info: TensorBytesInfo): void {
  const { shape } = info;
  if (!(shape.length === 1 || shape.length === 2) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new ReshardPlanError(`tensor "${slice.name}": shape [${shape.join(', ')}] is not 1-D or 2-D`);
  }
  if (!(Number.isSafeInteger(info.dtypeBytes) && info.dtypeBytes > 0)) {
    throw new ReshardPlanError(
      `tensor "${slice.name}": dtypeBytes ${info.dtypeBytes} is not a positive integer`,
    );
  }
  if (shape.length === 1 && slice.axis !== 'rows') {
    throw new ReshardPlanError(`tensor "${slice.name}" is 1-D and cannot be split by columns`);
  }
  const length = axisLength(shape, slice.axis);
  if (!(slice.start >= 0 && slice.start <= slice.end && slice.end <= length)) {
    throw new ReshardPlanError(
      `slice ${slice.axis} [${slice.start}, ${slice.end}) of "${slice.name}" lies outside its ${length} ${slice.axis}`,
    );
  }
}

/** Whether the slice is the whole tensor. */
export function isWholeTensor(slice: TensorSlice, shape: readonly number[]): boolean {
  return slice.start === 0 && slice.end === axisLength(shape, slice.axis) && slice.end > 0;
}

/**
 * The slice's range along `axis`, or undefined when it cannot be written as one range along
 * that axis (a strict part split along the other axis covers a rectangle, not a band).
 */
export function rangeAlong(
  slice: TensorSlice,
  axis: TensorSlice['axis'],
  shape: readonly number[],
): IndexRange | undefined {
  if (slice.axis === axis) return { start: slice.start, end: slice.end };
  if (shape.length === 2 && isWholeTensor(slice, shape)) return { start: 0, end: axisLength(shape, axis) };
  return undefined;
}

/** Raw checkpoint bytes of a slice: whole rows, or the column band of every row. */
export function sliceBytes(slice: TensorSlice, info: TensorBytesInfo): number {
  const length = slice.end - slice.start;
  const { shape, dtypeBytes } = info;
  if (shape.length === 1) return length * dtypeBytes;
  const across = slice.axis === 'rows' ? shape[1]! : shape[0]!;
  return length * across * dtypeBytes;
}

export function intersect(a: IndexRange, b: IndexRange): IndexRange | undefined {
  const start = Math.max(a.start, b.start);
  const end = Math.min(a.end, b.end);
  return start < end ? { start, end } : undefined;
}

export function covers(outer: IndexRange, inner: IndexRange): boolean {
  return outer.start <= inner.start && inner.end <= outer.end;
}

export function isSameSlice(a: TensorSlice, b: TensorSlice): boolean {
  return a.name === b.name && a.axis === b.axis && a.start === b.start && a.end === b.end;
}
