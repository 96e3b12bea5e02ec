/**
 * The raw checkpoint slices a device holds, addressable by (tensor, axis, range): the bytes
 * exactly as the checkpoint stores them, row-major [rows][cols] of the slice. Matrices are views
 * into the device's fused weight matrices (no second copy); vectors (norms, biases), which the
 * forward pass keeps widened to f32, are kept raw beside them. Re-sharding reads its `keep` and
 * peer-send pieces from here, and the weight digest hashes exactly these bytes.
 */
import { createHash } from 'node:crypto';
import { dtypeByteSize, type TensorDType, type TensorSlice } from '@seesaw/model';
import { containsRect, copyRect, formatRect, type Rect, rectElements, sliceRect } from './slice-geometry.ts';

export interface HeldSlice {
  slice: TensorSlice;
  /** Ordering unit (see weight-units.ts). */
  unit: number;
  dtype: TensorDType;
  /** Shape of the whole checkpoint tensor. */
  shape: number[];
  rect: Rect;
  /** Raw bytes of the slice, row-major [rows][cols] of its rectangle. */
  bytes: Uint8Array;
}

function freshBytes(numBytes: number): Uint8Array {
  return new Uint8Array(numBytes);
}

function sliceKey(slice: TensorSlice): string {
  return `${slice.name} ${slice.axis} ${slice.start} ${slice.end}`;
}

function compareSlices(a: TensorSlice, b: TensorSlice): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  if (a.axis !== b.axis) return a.axis < b.axis ? -1 : 1;
  return a.start - b.start || a.end - b.end;
}

function formatSlice(slice: TensorSlice): string {
  return `"${slice.name}" ${slice.axis} [${slice.start}, ${slice.end})`;
}

/** The bytes of `rect` in `held` when they are one contiguous run (whole rows of it), else undefined. */
function runOf(held: HeldSlice, rect: Rect): Uint8Array | undefined {
  if (rect.col0 !== held.rect.col0 || rect.col1 !== held.rect.col1) return undefined;
  const elementBytes = dtypeByteSize(held.dtype);
  const start = (rect.row0 - held.rect.row0) * (held.rect.col1 - held.rect.col0) * elementBytes;
  return held.bytes.subarray(start, start + rectElements(rect) * elementBytes);
}

export class HeldWeights {
  private readonly slices = new Map<string, HeldSlice>();

  /** Adds a slice; the same slice held twice (a tied lm_head that is the embedding) counts once. */
  hold(slice: TensorSlice, unit: number, dtype: TensorDType, shape: number[], bytes: Uint8Array): void {
    const rect = sliceRect(slice, shape);
    const expected = rectElements(rect) * dtypeByteSize(dtype);
    if (bytes.byteLength !== expected) {
      throw new RangeError(`${formatSlice(slice)}: ${bytes.byteLength} bytes held, its ${expected} expected`);
    }
    const key = sliceKey(slice);
    if (!this.slices.has(key)) this.slices.set(key, { slice: { ...slice }, unit, dtype, shape, rect, bytes });
  }

  /** Raw bytes held over all slices. */
  get numBytes(): number {
    let total = 0;
    for (const held of this.slices.values()) total += held.bytes.byteLength;
    return total;
  }

  get size(): number {
    return this.slices.size;
  }

  /** Every held slice in canonical order: tensor name, then axis, then range. */
  list(): HeldSlice[] {
    return [...this.slices.values()].sort((a, b) => compareSlices(a.slice, b.slice));
  }

  /** Whether some held slice contains `piece`. */
  holds(piece: TensorSlice): boolean {
    return [...this.slices.values()].some(
      (held) => held.slice.name === piece.name && containsRect(held.rect, sliceRect(piece, held.shape)),
    );
  }

  /**
   * Copies `piece` (which some held slice must contain) into `dest`, which holds rectangle
   * `destRect` of the same tensor. Returns the bytes copied.
   */
  copyInto(piece: TensorSlice, dest: Uint8Array, destRect: Rect): number {
    const held = this.holderOf(piece);
    const rect = sliceRect(piece, held.shape);
    copyRect(held.bytes, held.rect, dest, destRect, rect, dtypeByteSize(held.dtype));
    return rectElements(rect) * dtypeByteSize(held.dtype);
  }

  /**
   * The raw bytes of `piece`, row-major [rows][cols] of the piece: a view into the held bytes
   * when the piece is one contiguous run of them (whole rows), else a strided copy into memory
   * from `allocate` (a fresh buffer by default). A view is only valid until its slice is dropped.
   */
  extract(piece: TensorSlice, allocate: (numBytes: number) => Uint8Array = freshBytes): Uint8Array {
    const held = this.holderOf(piece);
    const rect = sliceRect(piece, held.shape);
    const view = runOf(held, rect);
    if (view) return view;
    const elementBytes = dtypeByteSize(held.dtype);
    const out = allocate(rectElements(rect) * elementBytes);
    copyRect(held.bytes, held.rect, out, rect, rect, elementBytes);
    return out;
  }

  /** The held bytes of `piece` when they are one contiguous run (whole rows of its holder), else undefined. */
  view(piece: TensorSlice): Uint8Array | undefined {
    const held = this.holderOf(piece);
    return runOf(held, sliceRect(piece, held.shape));
  }

  /** The ordering unit of the held slice `piece` lies in (whose memory it is). */
  unitOf(piece: TensorSlice): number {
    return this.holderOf(piece).unit;
  }

  /** Hands the slices of `unit` (their bytes, not a copy) over to `to`. */
  moveUnit(unit: number, to: HeldWeights): void {
    for (const [key, held] of this.slices) {
      if (held.unit !== unit) continue;
      this.slices.delete(key);
      to.hold(held.slice, unit, held.dtype, held.shape, held.bytes);
    }
  }

  /** Drops the slices of `unit`, except those of tensors in `stillNeeded` (a later unit reads them). */
  dropUnit(unit: number, stillNeeded: ReadonlySet<string> = new Set()): number {
    let freed = 0;
    for (const [key, held] of this.slices) {
      if (held.unit !== unit || stillNeeded.has(held.slice.name)) continue;
      freed += held.bytes.byteLength;
      this.slices.delete(key);
    }
    return freed;
  }

  /** sha256 (hex) over every slice in canonical order: its "name axis start end" line, then its bytes. */
  digest(): string {
    const hash = createHash('sha256');
    for (const held of this.list()) {
      hash.update(`${sliceKey(held.slice)}\n`);
      hash.update(held.bytes);
    }
    return hash.digest('hex');
  }

  /**
   * The held slice that contains `piece` (any held slice of its tensor may, whatever its axis);
   * of several (a tied lm head's rows also lie in the whole embedding), the one of the latest
   * unit, which a re-shard frees last.
   */
  private holderOf(piece: TensorSlice): HeldSlice {
    let holder: HeldSlice | undefined;
    for (const held of this.slices.values()) {
      if (held.slice.name !== piece.name || !containsRect(held.rect, sliceRect(piece, held.shape))) continue;
      if (!holder || held.unit > holder.unit) holder = held;
    }
    if (holder) return holder;
    const same = [...this.slices.values()].filter((held) => held.slice.name === piece.name);
    throw new RangeError(
      `${formatSlice(piece)} is not held by this device (it holds ${
        same.length ? same.map((held) => formatRect(held.rect)).join(', ') : 'nothing'
      } of that tensor)`,
    );
  }
}
