/**
 * Conversion between a device's paged KV cache and the host store's head-major slices, for
 * one sequence: what a gpu-actor runs to swap a sequence out (gather, then kvPut) or in
 * (kvGet, then scatter into whatever blocks it was given this time).
 *
 * Device layout, per layer: [block][kvHead][slotInBlock][headDim] of the cache's dtype (see
 * gpu-actor's PagedKvCache): f32 in Float32Array, bf16/f16 as raw bit patterns in Uint16Array.
 * Elements are copied as they are, never converted: the host tier holds the device's dtype. Slice layout: [layers, 2 (K then V), heads, tokens, headDim]. The layers
 * of the slice are the arrays passed in, in order (a pipeline stage passes its own layers,
 * or a single layer to stream one as soon as it is computed). `heads` indexes the cache's
 * own heads: a tensor-parallel rank whose cache holds global heads [a, b) as 0..b-a passes
 * local indices and addresses the store with the global range.
 */

import type { Range, Tensor } from '@seesaw/protocol';
import { checkRange, type KvDType, rangeLength } from './host-kv-layout.ts';

/** The device cache's geometry (same fields as @seesaw/kernels' KvLayout; f32 when dtype is absent). */
export interface PagedKvLayout {
  numKvHeads: number;
  headDim: number;
  blockSize: number;
  dtype?: KvDType;
}

/** One layer's K or V cache array: Float32Array for f32, Uint16Array for bf16/f16. */
export type KvCacheArray = Float32Array | Uint16Array;

function newKvArray(dtype: KvDType, length: number): KvCacheArray {
  return dtype === 'f32' ? new Float32Array(length) : new Uint16Array(length);
}

function isKvArrayOf(dtype: KvDType, data: unknown): data is KvCacheArray {
  return dtype === 'f32' ? data instanceof Float32Array : data instanceof Uint16Array;
}

export interface SequenceKvOptions {
  /** First token moved (default 0); tokens [firstToken, numTokens) are moved. */
  firstToken?: number;
}

export interface GatherOptions extends SequenceKvOptions {
  /** Destination of the cache's dtype with exactly the slice's element count (default: a new array). */
  out?: KvCacheArray;
}

/** Copies tokens [firstToken, numTokens) of one sequence out of the paged cache, head-major. */
export function gatherSequenceKv(
  cacheK: readonly KvCacheArray[],
  cacheV: readonly KvCacheArray[],
  blockTable: ArrayLike<number>,
  numTokens: number,
  layout: PagedKvLayout,
  heads: Range,
  options: GatherOptions = {},
): Tensor {
  const firstToken = options.firstToken ?? 0;
  const shape = checkTransfer(cacheK, cacheV, blockTable, numTokens, firstToken, layout, heads);
  const dtype = layout.dtype ?? 'f32';
  const length = shape.reduce((a, b) => a * b, 1);
  const out = options.out ?? newKvArray(dtype, length);
  if (out.length !== length || !isKvArrayOf(dtype, out))
    throw new RangeError(`gatherSequenceKv: out has ${out.length} elements, need ${length} ${dtype}`);
  forEachRun(
    cacheK,
    cacheV,
    blockTable,
    numTokens,
    firstToken,
    layout,
    heads,
    (cache, cacheOffset, sliceOffset, n) => {
      out.set(cache.subarray(cacheOffset, cacheOffset + n), sliceOffset);
    },
  );
  return { dtype, shape, data: out };
}

/** Writes a head-major slice (as gathered) into the sequence's blocks of the paged cache. */
export function scatterSequenceKv(
  cacheK: readonly KvCacheArray[],
  cacheV: readonly KvCacheArray[],
  blockTable: ArrayLike<number>,
  numTokens: number,
  layout: PagedKvLayout,
  heads: Range,
  slice: Tensor | KvCacheArray,
  options: SequenceKvOptions = {},
): void {
  const firstToken = options.firstToken ?? 0;
  const shape = checkTransfer(cacheK, cacheV, blockTable, numTokens, firstToken, layout, heads);
  const dtype = layout.dtype ?? 'f32';
  const isBare = slice instanceof Float32Array || slice instanceof Uint16Array;
  const data = isBare ? slice : slice.data;
  if (!isBare && (slice.dtype !== dtype || slice.shape.join() !== shape.join()))
    throw new RangeError(
      `scatterSequenceKv: slice is ${slice.dtype} [${slice.shape}], need ${dtype} [${shape}]`,
    );
  const length = shape.reduce((a, b) => a * b, 1);
  if (!isKvArrayOf(dtype, data) || data.length !== length)
    throw new RangeError(`scatterSequenceKv: slice needs ${length} ${dtype} elements`);
  forEachRun(
    cacheK,
    cacheV,
    blockTable,
    numTokens,
    firstToken,
    layout,
    heads,
    (cache, cacheOffset, sliceOffset, n) => {
      cache.set(data.subarray(sliceOffset, sliceOffset + n), cacheOffset);
    },
  );
}

type RunVisitor = (
  cache: KvCacheArray,
  cacheOffset: number,
  sliceOffset: number,
  numElements: number,
) => void;

/** Visits every contiguous run: one head's tokens inside one block. */
function forEachRun(
  cacheK: readonly KvCacheArray[],
  cacheV: readonly KvCacheArray[],
  blockTable: ArrayLike<number>,
  numTokens: number,
  firstToken: number,
  layout: PagedKvLayout,
  heads: Range,
  visit: RunVisitor,
): void {
  const { numKvHeads: H, headDim: D, blockSize: B } = layout;
  const numHeads = rangeLength(heads);
  const numSliceTokens = numTokens - firstToken;
  for (let l = 0; l < cacheK.length; l++) {
    for (let kv = 0; kv < 2; kv++) {
      const cache = kv === 0 ? cacheK[l]! : cacheV[l]!;
      for (let h = heads.start; h < heads.end; h++) {
        const row = ((l * 2 + kv) * numHeads + (h - heads.start)) * numSliceTokens;
        let t = firstToken;
        while (t < numTokens) {
          const block = blockTable[Math.floor(t / B)]!;
          const within = t % B;
          const run = Math.min(B - within, numTokens - t);
          visit(cache, ((block * H + h) * B + within) * D, (row + t - firstToken) * D, run * D);
          t += run;
        }
      }
    }
  }
}

/** Checks the arguments and returns the slice shape; throws RangeError (a caller bug). */
function checkTransfer(
  cacheK: readonly KvCacheArray[],
  cacheV: readonly KvCacheArray[],
  blockTable: ArrayLike<number>,
  numTokens: number,
  firstToken: number,
  layout: PagedKvLayout,
  heads: Range,
): number[] {
  const { numKvHeads: H, headDim: D, blockSize: B } = layout;
  if (![H, D, B].every((n) => Number.isInteger(n) && n > 0)) throw new RangeError('bad paged KV layout');
  if (cacheK.length === 0 || cacheK.length !== cacheV.length)
    throw new RangeError(
      `need the same nonzero number of K and V layers, got ${cacheK.length} and ${cacheV.length}`,
    );
  const blockElements = H * B * D;
  const numBlocks = cacheK[0]!.length / blockElements;
  if (!Number.isInteger(numBlocks)) throw new RangeError('cache length is not a whole number of blocks');
  const dtype = layout.dtype ?? 'f32';
  for (const cache of [...cacheK, ...cacheV]) {
    if (cache.length !== numBlocks * blockElements) throw new RangeError('cache layers differ in size');
    if (!isKvArrayOf(dtype, cache)) throw new RangeError(`cache layers are not ${dtype} arrays`);
  }
  const headProblem = checkRange('heads', heads, H);
  if (headProblem) throw new RangeError(headProblem);
  if (
    !Number.isInteger(numTokens) ||
    !Number.isInteger(firstToken) ||
    firstToken < 0 ||
    firstToken >= numTokens
  )
    throw new RangeError(`bad token range [${firstToken}, ${numTokens})`);
  if (numTokens > blockTable.length * B)
    throw new RangeError(
      `${numTokens} tokens need ${Math.ceil(numTokens / B)} blocks, table has ${blockTable.length}`,
    );
  for (let i = Math.floor(firstToken / B); i < Math.ceil(numTokens / B); i++) {
    const block = blockTable[i]!;
    if (!Number.isInteger(block) || block < 0 || block >= numBlocks)
      throw new RangeError(`block table entry ${i} is ${block}, cache has ${numBlocks} blocks`);
  }
  return [cacheK.length, 2, rangeLength(heads), numTokens - firstToken, D];
}
