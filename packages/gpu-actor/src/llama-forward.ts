import * as kernels from '@seesaw/kernels';
import { type ModelConfig, ropeInvFreq } from '@seesaw/model';
import type { ForwardBatch } from './forward-batch.ts';
import type { ModelWeights } from './model-weights.ts';
import type { PagedKvCache } from './paged-kv-cache.ts';
import { ropeTables } from './rope-table.ts';

/** Activation buffers reused across steps; they only grow, to the largest step seen. */
class Scratch {
  private readonly buffers = new Map<string, Float32Array>();

  get(name: string, length: number): Float32Array {
    const existing = this.buffers.get(name);
    if (existing && existing.length >= length) return existing.subarray(0, length);
    const fresh = new Float32Array(length);
    this.buffers.set(name, fresh);
    return fresh;
  }
}

/**
 * The Llama-family forward pass over one flattened step (prompt chunks and decode tokens
 * together), on the native kernels. Shapes, with T tokens in the step:
 *   hidden [T][H]; qkv [T][(Hq + 2 Hkv) D] as q | k | v per row; attention out [T][Hq D];
 *   gateUp [T][2I]; logits [numSampled][V], only for the rows that are sampled.
 */
export class LlamaForward {
  private readonly invFreq: Float64Array;
  private readonly scratch = new Scratch();

  constructor(
    readonly config: ModelConfig,
    readonly weights: ModelWeights,
  ) {
    this.invFreq = ropeInvFreq(config);
  }

  run(batch: ForwardBatch, cache: PagedKvCache): Float32Array {
    const { hiddenSize, numHeads, numKvHeads, headDim, intermediateSize, rmsNormEps, vocabSize } =
      this.config;
    const T = batch.numTokens;
    const qWidth = numHeads * headDim;
    const kvWidth = numKvHeads * headDim;
    const qkvStride = qWidth + 2 * kvWidth;
    const scale = 1 / Math.sqrt(headDim);

    const hidden = this.scratch.get('hidden', T * hiddenSize);
    const normed = this.scratch.get('normed', T * hiddenSize);
    const qkv = this.scratch.get('qkv', T * qkvStride);
    const attention = this.scratch.get('attention', T * qWidth);
    const projected = this.scratch.get('projected', T * hiddenSize);
    const gateUp = this.scratch.get('gateUp', T * 2 * intermediateSize);
    const activated = this.scratch.get('activated', T * intermediateSize);
    const { cos, sin } = ropeTables(batch.positions, this.invFreq);
    const keysView = qkv.subarray(qWidth);
    const valuesView = qkv.subarray(qWidth + kvWidth);

    kernels.embed(hidden, this.weights.embedding, batch.tokenIds);
    this.weights.layers.forEach((layer, l) => {
      kernels.rmsNorm(normed, hidden, layer.inputNorm, rmsNormEps);
      kernels.matmul(qkv, normed, T, layer.qkv, layer.qkvBias);
      kernels.rope(qkv, T, numHeads, headDim, qkvStride, cos, sin);
      kernels.rope(keysView, T, numKvHeads, headDim, qkvStride, cos, sin);
      // K/V of this step go into the cache before attention reads it: a chunk attends to itself.
      kernels.writeKv(
        cache.keys[l],
        cache.values[l],
        keysView,
        valuesView,
        qkvStride,
        batch.slots,
        cache.layout,
      );
      kernels.pagedAttention(
        attention,
        qkv,
        qkvStride,
        cache.keys[l],
        cache.values[l],
        batch.attention,
        numHeads,
        cache.layout,
        scale,
      );
      kernels.matmul(projected, attention, T, layer.o);
      kernels.addInPlace(hidden, projected);

      kernels.rmsNorm(normed, hidden, layer.postAttentionNorm, rmsNormEps);
      kernels.matmul(gateUp, normed, T, layer.gateUp);
      kernels.siluMul(activated, gateUp, T, intermediateSize);
      kernels.matmul(projected, activated, T, layer.down);
      kernels.addInPlace(hidden, projected);
    });

    const numSampled = batch.sampledRows.length;
    const logits = new Float32Array(numSampled * vocabSize);
    if (numSampled === 0) return logits;
    const lastHidden = this.scratch.get('lastHidden', numSampled * hiddenSize);
    batch.sampledRows.forEach((row, i) => {
      lastHidden.set(hidden.subarray(row * hiddenSize, (row + 1) * hiddenSize), i * hiddenSize);
    });
    kernels.rmsNorm(lastHidden, lastHidden, this.weights.finalNorm, rmsNormEps);
    kernels.matmul(logits, lastHidden, numSampled, this.weights.lmHead);
    return logits;
  }
}
