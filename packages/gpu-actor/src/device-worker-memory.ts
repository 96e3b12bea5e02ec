/**
 * Memory planning of one device worker: its weights are sized from the checkpoint header before
 * anything is read, so the KV cache can take exactly what the device budget leaves.
 */
import type { KvDType } from '@seesaw/kernels';
import {
  type Checkpoint,
  type ModelConfig,
  type ShardSpec,
  shardTensorSlices,
  type TensorSlice,
} from '@seesaw/model';
import { PagedKvCache } from './paged-kv-cache.ts';

/** Bytes of stored-dtype elements per checkpoint dtype. */
const STORED_BYTES = { F32: 4, F16: 2, BF16: 2 } as const;

function sliceElements(shape: number[], slice: TensorSlice): number {
  const length = slice.end - slice.start;
  if (shape.length === 1) return length;
  return slice.axis === 'rows' ? length * shape[1] : shape[0] * length;
}

function isSameSlice(a: TensorSlice | undefined, b: TensorSlice | undefined): boolean {
  return !!a && !!b && a.name === b.name && a.axis === b.axis && a.start === b.start && a.end === b.end;
}

/**
 * The bytes loadModelWeights will hold for `spec`: matrices in their stored dtype, 1-D tensors
 * (norms, biases) widened to f32, a tied lm_head that is the whole embedding counted once.
 * Reads only the checkpoint header.
 */
export function shardWeightBytes(checkpoint: Checkpoint, spec: ShardSpec): number {
  const slices = shardTensorSlices(spec);
  const isLmHeadShared = isSameSlice(spec.lmHead, spec.embedding);
  let total = 0;
  for (const slice of slices) {
    if (isLmHeadShared && slice === spec.lmHead) continue;
    const info = checkpoint.info(slice.name);
    const elements = sliceElements(info.shape, slice);
    total += info.shape.length === 1 ? elements * 4 : elements * STORED_BYTES[info.dtype];
  }
  return total;
}

/** The device ran out of memory before its KV cache got a single block. */
export class DeviceOutOfMemoryError extends Error {
  override name = 'DeviceOutOfMemoryError';
}

/** KV cache bytes a device gets: its budget minus its weights; throws when weights alone do not fit. */
export function kvCacheBudget(deviceMemoryBytes: number, weightBytes: number): number {
  if (weightBytes >= deviceMemoryBytes) {
    throw new DeviceOutOfMemoryError(
      `weights of ${weightBytes} bytes do not fit the device memory of ${deviceMemoryBytes} bytes`,
    );
  }
  return deviceMemoryBytes - weightBytes;
}

/**
 * KV cache bytes of a shard holding `weightBytes` of weights (kvCacheBudget); throws
 * DeviceOutOfMemoryError unless one block of the shard's layers and KV heads fits.
 */
export function shardKvCacheBytes(
  config: ModelConfig,
  spec: ShardSpec,
  memory: { deviceMemoryBytes: number; blockSize: number; kvDtype?: KvDType },
  weightBytes: number,
): number {
  const kvCacheBytes = kvCacheBudget(memory.deviceMemoryBytes, weightBytes);
  const cacheConfig = {
    ...config,
    numLayers: spec.layers.end - spec.layers.start,
    numKvHeads: spec.kvHeads.end - spec.kvHeads.start,
  };
  const bytesPerBlock = PagedKvCache.bytesPerBlock(cacheConfig, memory.blockSize, memory.kvDtype);
  if (kvCacheBytes < bytesPerBlock) {
    throw new DeviceOutOfMemoryError(
      `after ${weightBytes} bytes of weights, ${kvCacheBytes} of ${memory.deviceMemoryBytes} bytes ` +
        `leave no room for one KV block of ${bytesPerBlock} bytes`,
    );
  }
  return kvCacheBytes;
}
