/**
 * A device's paged KV cache as the kv-store thread sees it on the shared-memory path: views of
 * the cache's K and V arrays in the SharedArrayBuffer the device announced on its link, with the
 * global layers and KV heads they hold. The store copies between these blocks and its slots
 * itself (HostKvStore.copyFromCache / copyIntoCache), so KV crosses the thread boundary once per
 * direction and never as a frame.
 */

import type { KvCacheShare, Range } from '@seesaw/protocol';
import { DTYPE_BYTES } from '@seesaw/protocol';
import type { KvDType } from './host-kv-layout.ts';
import type { KvCacheArray } from './paged-kv-transfer.ts';

export interface SharedKvCache {
  /** Global layers held; local layer i is layers.start + i. */
  layers: Range;
  /** Global KV heads held; local head j is heads.start + j. */
  heads: Range;
  dtype: KvDType;
  numBlocks: number;
  blockSize: number;
  headDim: number;
  /** Per local layer: [block][localHead][slotInBlock][headDim] elements of dtype. */
  keys: KvCacheArray[];
  values: KvCacheArray[];
}

/** What a KvCacheShare describes (the message minus its tag and request id). */
export type SharedKvCacheGeometry = Omit<KvCacheShare, 'tag' | 'requestId' | 'region'>;

/** Views `geometry` in `buffer`, or says why it does not fit (a string). */
export function viewSharedKvCache(
  geometry: SharedKvCacheGeometry,
  buffer: SharedArrayBuffer,
): SharedKvCache | string {
  const { layers, heads, dtype, numBlocks, blockSize, headDim, keyOffsets, valueOffsets } = geometry;
  const numLayers = layers.end - layers.start;
  const numHeads = heads.end - heads.start;
  if (!(numLayers >= 1) || !(numHeads >= 1)) return `empty layer or head range`;
  if (keyOffsets.length !== numLayers || valueOffsets.length !== numLayers)
    return `${numLayers} layers need ${numLayers} K and V offsets, got ${keyOffsets.length} and ${valueOffsets.length}`;
  if (![numBlocks, blockSize, headDim].every((n) => Number.isSafeInteger(n) && n >= 1))
    return `bad cache geometry: ${numBlocks} blocks of ${blockSize} tokens, head dim ${headDim}`;
  const elementBytes = DTYPE_BYTES[dtype];
  const length = numBlocks * numHeads * blockSize * headDim;
  const view = (offset: number): KvCacheArray | string => {
    if (offset % elementBytes !== 0) return `offset ${offset} is not aligned to ${dtype}`;
    if (offset + length * elementBytes > buffer.byteLength)
      return `${length} ${dtype} elements at ${offset} overrun the ${buffer.byteLength}-byte region`;
    return dtype === 'f32'
      ? new Float32Array(buffer, offset, length)
      : new Uint16Array(buffer, offset, length);
  };
  const keys: KvCacheArray[] = [];
  const values: KvCacheArray[] = [];
  for (let i = 0; i < numLayers; i++) {
    const key = view(keyOffsets[i]!);
    if (typeof key === 'string') return `layer ${layers.start + i} K: ${key}`;
    const value = view(valueOffsets[i]!);
    if (typeof value === 'string') return `layer ${layers.start + i} V: ${value}`;
    keys.push(key);
    values.push(value);
  }
  return { layers: { ...layers }, heads: { ...heads }, dtype, numBlocks, blockSize, headDim, keys, values };
}
