import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import * as kernels from '@seesaw/kernels';
import { balancedRange, type IndexRange, type ModelConfig, ropeInvFreq, type ShardSpec } from '@seesaw/model';
import type { ForwardBatch } from './forward-batch.ts';
import type { ModelWeights } from './model-weights.ts';
import type { PagedKvCache } from './paged-kv-cache.ts';
import { ropeTables } from './rope-table.ts';
import type { TensorParallelGroup } from './tensor-parallel-group.ts';

/**
 * A long step (a 4096-token prefill on a loaded 2-core machine takes over 10 s) hands the
 * thread back to the event loop between layers at least this often, so a device worker keeps
 * answering heartbeats mid-step and its coordinator does not declare it lost.
 */
const YIELD_INTERVAL_MS = 1000;

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
 * The Llama-family forward pass of one shard (tpRank, ppStage) over one flattened step (prompt
 * chunks and decode tokens together), on the native kernels. The whole model is the shard
 * tp = pp = 1. Shapes, with T tokens in the step and this rank's Hq query heads, Hkv KV heads,
 * I MLP columns and Vr vocabulary rows:
 *   hidden [T][H] (replicated on every TP rank); qkv [T][(Hq + 2 Hkv) D] as q | k | v per row;
 *   attention out [T][Hq D]; gateUp [T][2I]; logits [numSampled][V] (gathered), only for the
 *   rows that are sampled, on the last stage.
 * o_proj and down_proj are row-parallel: their outputs are partial sums that are all-reduced
 * BEFORE the residual add (adding the residual on every rank first would count it tp times).
 */
export class LlamaForward {
  private readonly invFreq: Float64Array;
  private readonly scratch = new Scratch();
  readonly shard: ShardSpec;

  constructor(
    readonly config: ModelConfig,
    readonly weights: ModelWeights,
    readonly group?: TensorParallelGroup,
  ) {
    this.invFreq = ropeInvFreq(config);
    this.shard = weights.shard;
    const { tp, tpRank } = this.shard;
    if (tp > 1 && (group === undefined || group.size !== tp || group.rank !== tpRank)) {
      throw new RangeError(
        `TP rank ${tpRank} of ${tp} needs a tensor-parallel group of that size and rank ` +
          `(got ${group ? `rank ${group.rank} of ${group.size}` : 'none'})`,
      );
    }
  }

  /**
   * Runs this stage's layers. The first stage embeds batch.tokenIds; later stages start from
   * inputHidden [T][H], the previous stage's output. Returns logits [numSampled][V] on the last
   * stage (in a buffer reused by the next run; a TP rank fills only rows `logitRows` when
   * given), a fresh array of the hidden state [T][H] for the next stage otherwise.
   * cache holds only this shard's layers (local index = layer - shard.layers.start) and KV heads.
   * onLayerKvWritten(local layer) runs synchronously right after that layer's K/V of this step
   * are in the cache and before anything else of the layer: the cache's layer is final for the
   * step from then on, so a caller may copy it out (tiered KV write-backs) while later layers run.
   */
  async run(
    batch: ForwardBatch,
    cache: PagedKvCache,
    inputHidden?: Float32Array,
    onLayerKvWritten?: (layer: number) => void,
    logitRows?: IndexRange,
  ): Promise<Float32Array> {
    const { hiddenSize, headDim, rmsNormEps } = this.config;
    const { queryHeads, kvHeads, mlpColumns } = this.shard;
    const numHeads = queryHeads.end - queryHeads.start;
    const numKvHeads = kvHeads.end - kvHeads.start;
    const intermediateSize = mlpColumns.end - mlpColumns.start;
    const T = batch.numTokens;
    const qWidth = numHeads * headDim;
    const kvWidth = numKvHeads * headDim;
    const qkvStride = qWidth + 2 * kvWidth;
    const scale = 1 / Math.sqrt(headDim);
    if (cache.layout.numKvHeads !== numKvHeads || cache.keys.length !== this.weights.layers.length) {
      throw new RangeError(
        `KV cache holds ${cache.keys.length} layers x ${cache.layout.numKvHeads} KV heads; ` +
          `this shard needs ${this.weights.layers.length} x ${numKvHeads}`,
      );
    }

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

    if (this.weights.embedding) {
      kernels.embed(hidden, this.weights.embedding, batch.tokenIds);
    } else {
      if (inputHidden?.length !== T * hiddenSize) {
        throw new RangeError(
          `stage ${this.shard.ppStage} needs the previous stage's hidden state of ${T} x ${hiddenSize} floats ` +
            `(got ${inputHidden === undefined ? 'none' : inputHidden.length})`,
        );
      }
      hidden.set(inputHidden);
    }
    let lastYieldMs = performance.now();
    for (const [l, layer] of this.weights.layers.entries()) {
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
      onLayerKvWritten?.(l);
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
      if (this.group) await this.group.allReduceSum(projected);
      kernels.addInPlace(hidden, projected);

      kernels.rmsNorm(normed, hidden, layer.postAttentionNorm, rmsNormEps);
      kernels.matmul(gateUp, normed, T, layer.gateUp);
      kernels.siluMul(activated, gateUp, T, intermediateSize);
      kernels.matmul(projected, activated, T, layer.down);
      if (this.group) await this.group.allReduceSum(projected);
      kernels.addInPlace(hidden, projected);
      if (performance.now() - lastYieldMs > YIELD_INTERVAL_MS) {
        await yieldToEventLoop();
        lastYieldMs = performance.now();
      }
    }

    if (!this.shard.isLastStage) return hidden.slice();
    return this.logits(batch, hidden, logitRows);
  }

  /**
   * Final norm of the sampled rows, this rank's vocabulary slice of lm_head, gathered to rows in
   * vocabulary order: all of them, or only `logitRows` (the rows this rank samples) when the
   * caller reads no other. The buffers are reused across steps: the logits are valid until the
   * next run (a fresh 4 MB array a step cost page faults and GC on top of the copy).
   */
  private async logits(
    batch: ForwardBatch,
    hidden: Float32Array,
    logitRows?: IndexRange,
  ): Promise<Float32Array> {
    const { hiddenSize, rmsNormEps, vocabSize } = this.config;
    const { finalNorm, lmHead } = this.weights;
    if (!finalNorm || !lmHead) throw new Error('unreachable: last stage without final norm or lm_head');
    const numSampled = batch.sampledRows.length;
    const logits = this.scratch.get('logits', numSampled * vocabSize);
    if (numSampled === 0) return logits;
    const lastHidden = this.scratch.get('lastHidden', numSampled * hiddenSize);
    batch.sampledRows.forEach((row, i) => {
      lastHidden.set(hidden.subarray(row * hiddenSize, (row + 1) * hiddenSize), i * hiddenSize);
    });
    kernels.rmsNorm(lastHidden, lastHidden, finalNorm, rmsNormEps);
    if (!this.group || this.group.size === 1) {
      kernels.matmul(logits, lastHidden, numSampled, lmHead);
      return logits;
    }
    // Local logits [numSampled][Vr]; gathered as [rank][numSampled][Vr] and then put in vocab order.
    const local = this.scratch.get('localLogits', numSampled * lmHead.rows);
    kernels.matmul(local, lastHidden, numSampled, lmHead);
    const gathered = this.scratch.get('gatheredLogits', numSampled * vocabSize);
    await this.group.allGather(local, gathered);
    const { start: firstRow, end: endRow } = logitRows ?? { start: 0, end: numSampled };
    let offset = 0;
    for (let r = 0; r < this.group.size; r++) {
      const { start, end } = balancedRange(vocabSize, this.group.size, r);
      const width = end - start;
      for (let i = firstRow; i < endRow; i++) {
        logits.set(gathered.subarray(offset + i * width, offset + (i + 1) * width), i * vocabSize + start);
      }
      offset += numSampled * width;
    }
    return logits;
  }
}
