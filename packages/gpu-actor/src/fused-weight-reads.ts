/**
 * Reading a shard's slices into its fused weights: the slices that share an input stacked row by
 * row into one matrix (each slice's bytes read straight into its rows), norms and biases widened
 * to f32, a layer's row-parallel weights given their reduction leaves. ModelWeightsBuilder
 * assembles units from these, at load and when re-sharding.
 */
import type { Weight, WeightDType } from '@seesaw/kernels';
import {
  CheckpointError,
  decodeValues,
  dtypeByteSize,
  type LayerSlices,
  type TensorDType,
  type TensorSlice,
} from '@seesaw/model';
import type { LayerWeights, WeightSliceSource } from './model-weights.ts';
import { rowParallelLeaves } from './reduction-leaves.ts';

const KERNEL_DTYPE: Record<TensorDType, WeightDType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

/** Rows and columns a slice yields from its tensor; a 1-D tensor counts as one row of elements. */
function sliceShape(name: string, shape: number[], slice: TensorSlice): { rows: number; cols: number } {
  if (shape.length === 1) return { rows: 1, cols: slice.end - slice.start };
  if (shape.length !== 2) {
    throw new CheckpointError(`"${name}": expected a 1-D or 2-D tensor, shape is [${shape.join(', ')}]`);
  }
  return slice.axis === 'rows'
    ? { rows: slice.end - slice.start, cols: shape[1] }
    : { rows: shape[0], cols: slice.end - slice.start };
}

/** Receives every slice read, with its unit: the device's held raw slices. */
export type SliceSink = (slice: TensorSlice, dtype: TensorDType, shape: number[], bytes: Uint8Array) => void;

/** Where a unit's weight memory comes from: fresh buffers, or blocks of the device's WeightArena. */
export type Allocate = (numBytes: number) => Uint8Array;

export const freshBytes: Allocate = (numBytes) => new Uint8Array(numBytes);

/**
 * Reads 2-D tensor slices that share a column count into one row-major matrix, each slice's
 * bytes landing straight at its rows' offset: no intermediate copy, no widening.
 */
export function loadStackedMatrix(
  source: WeightSliceSource,
  slices: TensorSlice[],
  sink?: SliceSink,
  allocate: Allocate = freshBytes,
): Weight {
  const infos = slices.map((slice) => source.tensor(slice.name));
  const shapes = slices.map((slice, i) => sliceShape(slice.name, infos[i].shape, slice));
  const dtype = infos[0].dtype;
  const cols = shapes[0].cols;
  infos.forEach((info, i) => {
    if (info.dtype !== dtype || info.shape.length !== 2 || shapes[i].cols !== cols) {
      throw new CheckpointError(
        `tensors ${slices.map((s) => s.name).join(', ')} must be 2-D with one dtype ` +
          `and ${cols} columns to be fused (got ${slices[i].name}: ${info.dtype} [${info.shape.join(', ')}])`,
      );
    }
  });
  const rows = shapes.reduce((sum, shape) => sum + shape.rows, 0);
  const block = allocate(rows * cols * dtypeByteSize(dtype));
  const data =
    dtype === 'F32'
      ? new Float32Array(block.buffer, block.byteOffset, rows * cols)
      : new Uint16Array(block.buffer, block.byteOffset, rows * cols);
  let byteOffset = 0;
  slices.forEach((slice, i) => {
    const byteLength = shapes[i].rows * cols * data.BYTES_PER_ELEMENT;
    const view = block.subarray(byteOffset, byteOffset + byteLength);
    source.read(slice, view);
    sink?.(slice, dtype, infos[i].shape, view);
    byteOffset += byteLength;
  });
  return { dtype: KERNEL_DTYPE[dtype], rows, cols, data };
}

/** Small 1-D slices (norms, biases) widened to f32 and concatenated. */
export function loadStackedVector(
  source: WeightSliceSource,
  slices: TensorSlice[],
  sink?: SliceSink,
  allocate: Allocate = freshBytes,
): Float32Array {
  const parts = slices.map((slice) => {
    const info = source.tensor(slice.name);
    const { rows, cols } = sliceShape(slice.name, info.shape, slice);
    // The raw bytes outlive the load only when held (re-sharding, digests).
    const bytes = (sink ? allocate : freshBytes)(rows * cols * dtypeByteSize(info.dtype));
    source.read(slice, bytes);
    sink?.(slice, info.dtype, info.shape, bytes);
    // Vectors only (norms, biases): widening them costs nothing worth keeping 16-bit for.
    return Float32Array.from(decodeValues(bytes, info.dtype));
  });
  const length = parts.reduce((sum, part) => sum + part.length, 0);
  const block = allocate(length * Float32Array.BYTES_PER_ELEMENT);
  const out = new Float32Array(block.buffer, block.byteOffset, length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** A row-parallel weight with its K reduction cut into the leaves of the canonical tree. */
function withLeaves(weight: Weight, tp: number): Weight {
  return { ...weight, leaves: rowParallelLeaves(tp, weight.cols) };
}

/** One decoder layer of `slices`, its projections fused (see LayerWeights). */
export function loadLayer(
  source: WeightSliceSource,
  slices: LayerSlices,
  tp: number,
  sink: SliceSink | undefined,
  allocate: Allocate,
): LayerWeights {
  const { q, k, v, qBias, kBias, vBias } = slices;
  const vector = (parts: TensorSlice[]) => loadStackedVector(source, parts, sink, allocate);
  const matrix = (parts: TensorSlice[]) => loadStackedMatrix(source, parts, sink, allocate);
  return {
    inputNorm: vector([slices.inputNorm]),
    qkv: matrix([q, k, v]),
    qkvBias: qBias && kBias && vBias ? vector([qBias, kBias, vBias]) : undefined,
    o: withLeaves(matrix([slices.o]), tp),
    postAttentionNorm: vector([slices.postAttentionNorm]),
    gateUp: matrix([slices.gate, slices.up]),
    down: withLeaves(matrix([slices.down]), tp),
  };
}
