/**
 * Conversion between a device's paged KV cache and the host store's head-major slices, for
 * one sequence: what a gpu-actor runs to swap a sequence out (gather, then kvPut) or in
 * (kvGet, then scatter into whatever blocks it was given this time).
 *
 * Device layout, per layer: [block][kvHead][slotInBlock][headDim] f32 (see gpu-actor's
 * PagedKvCache). Slice layout: [layers, 2 (K then V), heads, tokens, headDim]. The layers
 * of the slice are the arrays passed in, in order (a pipeline stage passes its own layers,
 * or a single layer to stream one as soon as it is computed). `heads` indexes the cache's
 * own heads: a tensor-parallel rank whose cache holds global heads [a, b) as 0..b-a passes
 * local indices and addresses the store with the global range.
 */

import type { Range, Tensor } from '@seesaw/protocol';
import { checkRange, rangeLength } from './host-kv-layout.ts';

/** The device cache's geometry (same fields as @seesaw/kernels' KvLayout). */
export interface PagedKvLayout {
  numKvHeads: number;
  headDim: number;
  blockSize: number;
}

export interface SequenceKvOptions {
  /** First token moved (default 0); tokens [firstToken, numTokens) are moved. */
  firstToken?: number;
}

export interface GatherOptions extends SequenceKvOptions {
  /** Destination with exactly the slice's element count (default: a new array). */
  out?: Float32Array;
}

/** Copies tokens [firstToken, numTokens) of one sequence out of the paged cache, head-major. */
export function gatherSequenceKv(
  cacheK: readonly Float32Array[],
  cacheV: readonly Float32Array[],
  blockTable: ArrayLike<number>,
  numTokens: number,
  layout: PagedKvLayout,
  heads: Range,
  options: GatherOptions = {},
): Tensor {
  const firstToken = options.firstToken ?? 0;
  const shape = checkTransfer(cacheK, cacheV, blockTable, numTokens, firstToken, layout, heads);
  const length = shape.reduce((a, b) => a * b, 1);
  const out = options.out ?? new Float32Array(length);
  if (out.length !== length)
    throw new RangeError(`gatherSequenceKv: out has ${out.length} elements, need ${length}`);
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
  return { dtype: 'f32', shape, data: out };
}

/** Writes a head-major slice (as gathered) into the sequence's blocks of the paged cache. */
export function scatterSequenceKv(
  cacheK: readonly Float32Array[],
  cacheV: readonly Float32Array[],
  blockTable: ArrayLike<number>,
  numTokens: number,
  layout: PagedKvLayout,
  heads: Range,
  slice: Tensor | Float32Array,
  options: SequenceKvOptions = {},
): void {
  const firstToken = options.firstToken ?? 0;
  const shape = checkTransfer(cacheK, cacheV, blockTable, numTokens, firstToken, layout, heads);
  const data = slice instanceof Float32Array ? slice : slice.data;
  if (!(slice instanceof Float32Array)) {
    if (slice.dtype !== 'f32' || slice.shape.join() !== shape.join())
      throw new RangeError(
        `scatterSequenceKv: slice is ${slice.dtype} [${slice.shape}], need f32 [${shape}]`,
      );
  }
  const length = shape.reduce((a, b) => a * b, 1);
  if (!(data instanceof Float32Array) || data.length !== length)
    throw new RangeError(`scatterSequenceKv: slice needs ${length} f32 elements`);
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
  cache: Float32Array,
  cacheOffset: number,
  sliceOffset: number,
  numElements: number,
) => void;

/** Visits every contiguous run: one head's tokens inside one block. */
function forEachRun(
  cacheK: readonly Float32Array[],
  cacheV: readonly Float32Array[],
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
  cacheK: readonly Float32Array[],
  cacheV: readonly Float32Array[],
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
  for (const cache of [...cacheK, ...cacheV]) {
    if (cache.length !== numBlocks * blockElements) throw new RangeError('cache layers differ in size');
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
