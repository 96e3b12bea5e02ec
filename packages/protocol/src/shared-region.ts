/**
 * A SharedArrayBuffer both ends of a worker_threads link hold, carved into tensors. Large
 * tensors written into a region cross the link as a (region, byteOffset) descriptor only.
 *
 * Ownership is by convention: the writer allocates, fills and posts; the reader uses the
 * view and answers; only then does the writer free or overwrite the range. Nothing here
 * synchronises the two sides beyond the message ordering of the link.
 */

import { DTYPE_BYTES, type DType, elementCount, type Tensor, viewTensorData } from './tensor.ts';

/** Offset/length of one allocation inside a region. */
export interface SharedSlice {
  region: number;
  byteOffset: number;
  byteLength: number;
}

/** Allocations start on cache-line boundaries. */
const SLICE_ALIGNMENT = 64;

export class SharedRegion {
  /** Free ranges sorted by offset, adjacent ranges merged. */
  private free: Array<{ offset: number; length: number }>;
  /** byteOffset -> allocated (aligned) length. */
  private readonly allocated = new Map<number, number>();

  constructor(
    /** Id both peers use for this region (unique per link). */
    readonly id: number,
    readonly buffer: SharedArrayBuffer,
  ) {
    this.free = [{ offset: 0, length: buffer.byteLength }];
  }

  static create(id: number, byteLength: number): SharedRegion {
    return new SharedRegion(id, new SharedArrayBuffer(byteLength));
  }

  get numFreeBytes(): number {
    return this.free.reduce((sum, range) => sum + range.length, 0);
  }

  /** First-fit allocation of `byteLength` bytes; undefined when no free range is big enough. */
  allocate(byteLength: number): SharedSlice | undefined {
    const length = Math.max(SLICE_ALIGNMENT, Math.ceil(byteLength / SLICE_ALIGNMENT) * SLICE_ALIGNMENT);
    const index = this.free.findIndex((range) => range.length >= length);
    if (index < 0) return undefined;
    const range = this.free[index]!;
    const byteOffset = range.offset;
    if (range.length === length) this.free.splice(index, 1);
    else this.free[index] = { offset: range.offset + length, length: range.length - length };
    this.allocated.set(byteOffset, length);
    return { region: this.id, byteOffset, byteLength };
  }

  /** A tensor whose data lives in this region (fill it, then post it). */
  allocateTensor(dtype: DType, shape: number[]): Tensor | undefined {
    const length = elementCount(shape);
    const slice = this.allocate(length * DTYPE_BYTES[dtype]);
    if (!slice) return undefined;
    return { dtype, shape, data: viewTensorData(dtype, this.buffer, slice.byteOffset, length) };
  }

  /** Returns a slice (or a tensor allocated here) to the free list. */
  release(slice: SharedSlice | Tensor): void {
    const byteOffset = 'data' in slice ? slice.data.byteOffset : slice.byteOffset;
    if ('data' in slice && slice.data.buffer !== this.buffer)
      throw new Error('release: tensor is not in this region');
    const length = this.allocated.get(byteOffset);
    if (length === undefined) throw new Error(`release: nothing allocated at ${byteOffset}`);
    this.allocated.delete(byteOffset);
    let index = this.free.findIndex((range) => range.offset > byteOffset);
    if (index < 0) index = this.free.length;
    this.free.splice(index, 0, { offset: byteOffset, length });
    this.mergeAround(index);
  }

  /** View of a slice as a tensor (the reader's side). */
  view(dtype: DType, shape: number[], slice: SharedSlice): Tensor {
    const length = elementCount(shape);
    if (slice.region !== this.id)
      throw new Error(`view: slice of region ${slice.region}, this is ${this.id}`);
    if (length * DTYPE_BYTES[dtype] > slice.byteLength) throw new RangeError('view: shape larger than slice');
    return { dtype, shape, data: viewTensorData(dtype, this.buffer, slice.byteOffset, length) };
  }

  private mergeAround(index: number): void {
    const next = this.free[index + 1];
    const current = this.free[index]!;
    if (next && current.offset + current.length === next.offset) {
      current.length += next.length;
      this.free.splice(index + 1, 1);
    }
    const previous = this.free[index - 1];
    if (previous && previous.offset + previous.length === current.offset) {
      previous.length += current.length;
      this.free.splice(index, 1);
    }
  }
}
