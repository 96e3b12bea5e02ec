import type { Weight, WeightDType } from '@seesaw/kernels';
import {
  type Checkpoint,
  CheckpointError,
  decodeValues,
  fullShardSpec,
  type LayerSlices,
  numElements,
  type ShardSpec,
  type TensorDType,
  type TensorInfo,
  type TensorSlice,
} from '@seesaw/model';

/** One decoder layer's weights, with the projections that share an input fused row-wise. */
export interface LayerWeights {
  inputNorm: Float32Array;
  /** [q rows | k rows | v rows][hidden]: one pass over the input makes q, k and v. */
  qkv: Weight;
  qkvBias: Float32Array | undefined;
  o: Weight;
  postAttentionNorm: Float32Array;
  /** [gate rows | up rows][hidden]: one pass makes both halves of SwiGLU. */
  gateUp: Weight;
  down: Weight;
}

export interface ModelWeights {
  /** What these weights are a shard of (the whole model: tp = pp = 1). */
  shard: ShardSpec;
  /** First pipeline stage only. */
  embedding: Weight | undefined;
  /** The stage's layers, shard.layers.start first. */
  layers: LayerWeights[];
  /** Last pipeline stage only. */
  finalNorm: Float32Array | undefined;
  /** Last stage only: the rank's vocabulary rows; the embedding table itself when tied and whole. */
  lmHead: Weight | undefined;
  /** Bytes held by all weights (matrices in their stored dtype, vectors as f32). */
  numBytes: number;
}

const KERNEL_DTYPE: Record<TensorDType, WeightDType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

/** Rows and columns a slice yields from its tensor; a 1-D tensor counts as one row of elements. */
function sliceShape(info: TensorInfo, slice: TensorSlice): { rows: number; cols: number } {
  if (info.shape.length === 1) return { rows: 1, cols: slice.end - slice.start };
  if (info.shape.length !== 2) {
    throw new CheckpointError(
      `"${info.name}": expected a 1-D or 2-D tensor, shape is [${info.shape.join(', ')}]`,
    );
  }
  return slice.axis === 'rows'
    ? { rows: slice.end - slice.start, cols: info.shape[1] }
    : { rows: info.shape[0], cols: slice.end - slice.start };
}

/** Reads one slice straight from the checkpoint's byte ranges into dest (its exact size). */
function readSlice(checkpoint: Checkpoint, info: TensorInfo, slice: TensorSlice, dest: Uint8Array): void {
  if (info.shape.length === 1) {
    const elementBytes = info.byteLength / Math.max(info.shape[0], 1);
    checkpoint.readBytes(info.name, dest, slice.start * elementBytes, slice.end * elementBytes);
  } else if (slice.axis === 'rows') {
    checkpoint.readRows(info.name, slice.start, slice.end, dest);
  } else {
    checkpoint.readColumns(info.name, slice.start, slice.end, dest);
  }
}

/**
 * Reads 2-D tensor slices that share a column count into one row-major matrix, each slice's
 * bytes landing straight at its rows' offset: no intermediate copy, no widening.
 */
function loadStackedMatrix(checkpoint: Checkpoint, slices: TensorSlice[]): Weight {
  const infos = slices.map((slice) => checkpoint.info(slice.name));
  const shapes = slices.map((slice, i) => sliceShape(infos[i], slice));
  const dtype = infos[0].dtype;
  const cols = shapes[0].cols;
  infos.forEach((info, i) => {
    if (info.dtype !== dtype || info.shape.length !== 2 || shapes[i].cols !== cols) {
      throw new CheckpointError(
        `${checkpoint.dir}: tensors ${slices.map((s) => s.name).join(', ')} must be 2-D with one dtype ` +
          `and ${cols} columns to be fused (got ${info.name}: ${info.dtype} [${info.shape.join(', ')}])`,
      );
    }
  });
  const rows = shapes.reduce((sum, shape) => sum + shape.rows, 0);
  const data = dtype === 'F32' ? new Float32Array(rows * cols) : new Uint16Array(rows * cols);
  let byteOffset = 0;
  slices.forEach((slice, i) => {
    const byteLength = shapes[i].rows * cols * data.BYTES_PER_ELEMENT;
    readSlice(checkpoint, infos[i], slice, new Uint8Array(data.buffer, byteOffset, byteLength));
    byteOffset += byteLength;
  });
  return { dtype: KERNEL_DTYPE[dtype], rows, cols, data };
}

/** Small 1-D slices (norms, biases) widened to f32 and concatenated. */
function loadStackedVector(checkpoint: Checkpoint, slices: TensorSlice[]): Float32Array {
  const parts = slices.map((slice) => {
    const info = checkpoint.info(slice.name);
    const { rows, cols } = sliceShape(info, slice);
    const bytes = new Uint8Array((rows * cols * info.byteLength) / numElements(info.shape));
    readSlice(checkpoint, info, slice, bytes);
    // Vectors only (norms, biases): widening them costs nothing worth keeping 16-bit for.
    return Float32Array.from(decodeValues(bytes, info.dtype));
  });
  const out = new Float32Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function weightBytes(weight: Weight | undefined): number {
  return weight?.data.byteLength ?? 0;
}

function loadLayer(checkpoint: Checkpoint, slices: LayerSlices): LayerWeights {
  const { q, k, v, qBias, kBias, vBias } = slices;
  return {
    inputNorm: loadStackedVector(checkpoint, [slices.inputNorm]),
    qkv: loadStackedMatrix(checkpoint, [q, k, v]),
    qkvBias: qBias && kBias && vBias ? loadStackedVector(checkpoint, [qBias, kBias, vBias]) : undefined,
    o: loadStackedMatrix(checkpoint, [slices.o]),
    postAttentionNorm: loadStackedVector(checkpoint, [slices.postAttentionNorm]),
    gateUp: loadStackedMatrix(checkpoint, [slices.gate, slices.up]),
    down: loadStackedMatrix(checkpoint, [slices.down]),
  };
}

function isSameSlice(a: TensorSlice | undefined, b: TensorSlice | undefined): boolean {
  return (
    a !== undefined &&
    b !== undefined &&
    a.name === b.name &&
    a.axis === b.axis &&
    a.start === b.start &&
    a.end === b.end
  );
}

/**
 * Loads the weights of one shard (the whole model without one) after validating names, shapes
 * and dtypes. Only the shard's slices are read, each straight from its byte ranges in the
 * safetensors files.
 */
export function loadModelWeights(checkpoint: Checkpoint, shard?: ShardSpec): ModelWeights {
  checkpoint.validate();
  const spec = shard ?? fullShardSpec(checkpoint.config);
  const layers = spec.layerSlices.map((slices) => loadLayer(checkpoint, slices));
  const embedding = spec.embedding ? loadStackedMatrix(checkpoint, [spec.embedding]) : undefined;
  // A tied lm_head on a single TP rank is the embedding table itself: shared, not read twice.
  const lmHead = isSameSlice(spec.lmHead, spec.embedding)
    ? embedding
    : spec.lmHead && loadStackedMatrix(checkpoint, [spec.lmHead]);
  const finalNorm = spec.finalNorm && loadStackedVector(checkpoint, [spec.finalNorm]);

  let numBytes = weightBytes(embedding) + (finalNorm?.byteLength ?? 0);
  if (lmHead !== embedding) numBytes += weightBytes(lmHead);
  for (const layer of layers) {
    numBytes +=
      layer.inputNorm.byteLength + layer.postAttentionNorm.byteLength + (layer.qkvBias?.byteLength ?? 0);
    numBytes +=
      weightBytes(layer.qkv) + weightBytes(layer.o) + weightBytes(layer.gateUp) + weightBytes(layer.down);
  }
  return { shard: spec, embedding, layers, finalNorm, lmHead, numBytes };
}
