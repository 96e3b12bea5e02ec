/**
 * Tensor slices as rectangles of their tensor, so that slices cut along different axes (a whole
 * o_proj held as rows, a TP layout's columns of it) can be intersected and copied between. A 2-D
 * tensor [R][C]: 'rows' [s, e) is rows [s, e) x columns [0, C); 'columns' [s, e) is rows [0, R) x
 * columns [s, e). A 1-D tensor [N] is one row of N elements, and either axis names elements.
 * Buffers hold a rectangle's raw bytes row-major: [rows][cols] elements of `elementBytes` each.
 */
import { copyRows } from '@seesaw/kernels';
import type { TensorSlice } from '@seesaw/model';

/** Rows [row0, row1) x columns [col0, col1) of a tensor viewed as a matrix. */
export interface Rect {
  row0: number;
  row1: number;
  col0: number;
  col1: number;
}

/** The rectangle `slice` covers of a tensor of `shape`; throws when it is outside the tensor. */
export function sliceRect(
  slice: Pick<TensorSlice, 'name' | 'axis' | 'start' | 'end'>,
  shape: number[],
): Rect {
  const [rows, cols] = shape.length === 1 ? [1, shape[0]!] : shape.length === 2 ? [shape[0]!, shape[1]!] : [];
  if (rows === undefined || cols === undefined) {
    throw new RangeError(
      `"${slice.name}": slices of a tensor of shape [${shape.join(', ')}] are not supported`,
    );
  }
  const isElements = shape.length === 1 || slice.axis === 'columns';
  const extent = isElements ? cols : rows;
  if (!(Number.isInteger(slice.start) && Number.isInteger(slice.end) && 0 <= slice.start)) {
    throw new RangeError(`"${slice.name}": ${slice.axis} [${slice.start}, ${slice.end}) are not a range`);
  }
  if (!(slice.start <= slice.end && slice.end <= extent)) {
    throw new RangeError(
      `"${slice.name}": ${slice.axis} [${slice.start}, ${slice.end}) are outside [0, ${extent})`,
    );
  }
  return isElements
    ? { row0: 0, row1: rows, col0: slice.start, col1: slice.end }
    : { row0: slice.start, row1: slice.end, col0: 0, col1: cols };
}

export function rectElements(rect: Rect): number {
  return (rect.row1 - rect.row0) * (rect.col1 - rect.col0);
}

export function containsRect(outer: Rect, inner: Rect): boolean {
  return (
    outer.row0 <= inner.row0 &&
    inner.row1 <= outer.row1 &&
    outer.col0 <= inner.col0 &&
    inner.col1 <= outer.col1
  );
}

/**
 * Copies the `region` rectangle (tensor coordinates) from `src`, which holds rectangle `srcRect`,
 * into `dest`, which holds rectangle `destRect`. Both must contain the region. A run of whole
 * rows of both sides is one contiguous copy; otherwise one copy per row.
 */
export function copyRect(
  src: Uint8Array,
  srcRect: Rect,
  dest: Uint8Array,
  destRect: Rect,
  region: Rect,
  elementBytes: number,
): void {
  if (!containsRect(srcRect, region) || !containsRect(destRect, region)) {
    throw new RangeError(
      `copy of ${formatRect(region)} needs it inside source ${formatRect(srcRect)} and destination ${formatRect(destRect)}`,
    );
  }
  const srcRowBytes = (srcRect.col1 - srcRect.col0) * elementBytes;
  const destRowBytes = (destRect.col1 - destRect.col0) * elementBytes;
  const runBytes = (region.col1 - region.col0) * elementBytes;
  if (src.byteLength < (srcRect.row1 - srcRect.row0) * srcRowBytes) {
    throw new RangeError(`source of ${src.byteLength} bytes is smaller than its ${formatRect(srcRect)}`);
  }
  if (dest.byteLength < (destRect.row1 - destRect.row0) * destRowBytes) {
    throw new RangeError(
      `destination of ${dest.byteLength} bytes is smaller than its ${formatRect(destRect)}`,
    );
  }
  const srcStart = (region.row0 - srcRect.row0) * srcRowBytes + (region.col0 - srcRect.col0) * elementBytes;
  const destStart =
    (region.row0 - destRect.row0) * destRowBytes + (region.col0 - destRect.col0) * elementBytes;
  const numRows = region.row1 - region.row0;
  if (runBytes === srcRowBytes && runBytes === destRowBytes) {
    // Whole rows: one run (a big one is written with streaming stores, see copy_rows.cc).
    const numBytes = numRows * runBytes;
    copyRows(src, srcStart, numBytes, dest, destStart, numBytes, numBytes, 1);
    return;
  }
  // Row by row in one native call: a typed-array view and a set() per row cost ~3x the copy.
  copyRows(src, srcStart, srcRowBytes, dest, destStart, destRowBytes, runBytes, numRows);
}

export function formatRect(rect: Rect): string {
  return `rows [${rect.row0}, ${rect.row1}) x columns [${rect.col0}, ${rect.col1})`;
}
