// Float64 oracle for the paged KV cache and attention: gathers each sequence's keys through
// its block table, computes all scores, softmax with max subtraction, weighted sum of values.

export interface KvLayout {
  numKvHeads: number;
  headDim: number;
  blockSize: number;
}

export interface AttentionBatch {
  queryStart: Int32Array;
  contextLens: Int32Array;
  blockTables: Int32Array;
  maxBlocksPerSeq: number;
}

/** Offset of (slot, kv head) in a [numBlocks][numKvHeads][blockSize][headDim] cache. */
export function cacheOffset(slot: number, head: number, layout: KvLayout): number {
  const block = Math.floor(slot / layout.blockSize);
  const offset = slot % layout.blockSize;
  return ((block * layout.numKvHeads + head) * layout.blockSize + offset) * layout.headDim;
}

/** Copies token t's heads (k[t*rowStride + h*headDim]) into slot slots[t]; mutates the caches. */
export function writeKv(
  kCache: Float64Array,
  vCache: Float64Array,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  rowStride: number,
  slots: ArrayLike<number>,
  layout: KvLayout,
): void {
  for (let t = 0; t < slots.length; t++) {
    for (let h = 0; h < layout.numKvHeads; h++) {
      const dst = cacheOffset(slots[t], h, layout);
      for (let e = 0; e < layout.headDim; e++) {
        kCache[dst + e] = k[t * rowStride + h * layout.headDim + e];
        vCache[dst + e] = v[t * rowStride + h * layout.headDim + e];
      }
    }
  }
}

/** Returns out [T][numHeads*headDim]. */
export function pagedAttention(
  q: ArrayLike<number>,
  qRowStride: number,
  kCache: ArrayLike<number>,
  vCache: ArrayLike<number>,
  batch: AttentionBatch,
  numHeads: number,
  layout: KvLayout,
  scale: number,
): Float64Array {
  const { headDim, blockSize } = layout;
  const group = numHeads / layout.numKvHeads;
  const numSeqs = batch.contextLens.length;
  const totalTokens = batch.queryStart[numSeqs];
  const out = new Float64Array(totalTokens * numHeads * headDim);
  for (let s = 0; s < numSeqs; s++) {
    const numQueries = batch.queryStart[s + 1] - batch.queryStart[s];
    const ctx = batch.contextLens[s];
    const slotOf = (pos: number) =>
      batch.blockTables[s * batch.maxBlocksPerSeq + Math.floor(pos / blockSize)] * blockSize +
      (pos % blockSize);
    for (let i = 0; i < numQueries; i++) {
      const t = batch.queryStart[s] + i;
      const position = ctx - numQueries + i;
      for (let h = 0; h < numHeads; h++) {
        const g = Math.floor(h / group);
        const scores = new Float64Array(position + 1);
        for (let p = 0; p <= position; p++) {
          const kOff = cacheOffset(slotOf(p), g, layout);
          let dot = 0;
          for (let e = 0; e < headDim; e++) dot += q[t * qRowStride + h * headDim + e] * kCache[kOff + e];
          scores[p] = scale * dot;
        }
        const max = Math.max(...scores);
        let sum = 0;
        for (let p = 0; p <= position; p++) {
          scores[p] = Math.exp(scores[p] - max);
          sum += scores[p];
        }
        for (let p = 0; p <= position; p++) {
          const vOff = cacheOffset(slotOf(p), g, layout);
          for (let e = 0; e < headDim; e++) {
            out[(t * numHeads + h) * headDim + e] += (scores[p] / sum) * vCache[vOff + e];
          }
        }
      }
    }
  }
  return out;
}
