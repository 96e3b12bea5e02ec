import type { ForwardBatch, ModelWeights, TensorParallelGroup } from '@seesaw/gpu-actor';
import { ropeTables } from '@seesaw/gpu-actor';
import type { Weight } from '@seesaw/kernels';
import { balancedRange, type ModelConfig, ropeInvFreq, type ShardSpec } from '@seesaw/model';
import { destroyAll, type GpuKvCache } from './gpu-kv-cache.ts';
import { type CandidatesPlan, type GpuCandidates, selectCandidates } from './gpu-sampling.ts';
import { StepBufferPool } from './step-buffer-pool.ts';
import type { WebGpuKernels } from './webgpu-kernels.ts';
import type { GpuTensor, GpuWeight } from './webgpu-stream.ts';

/**
 * Called once a layer (local index) of the step is encoded into the command stream, its K/V
 * writes included: it may encode more work behind it (a write-back's copies) and submit.
 */
export type AfterLayerHook = (layer: number) => void;

/** One layer's weights resident on the device. */
interface GpuLayer {
  inputNorm: GpuTensor;
  qkv: GpuWeight;
  qkvBias: GpuTensor | undefined;
  o: GpuWeight;
  postAttentionNorm: GpuTensor;
  gateUp: GpuWeight;
  down: GpuWeight;
}

/**
 * The Llama forward pass of one shard (tpRank, ppStage; the whole model is tp = pp = 1) on one
 * WebGPU device: the same steps as the CPU LlamaForward, with the weights uploaded once at
 * construction. Per step only the batch metadata goes up (token ids, RoPE rows, slots, block
 * tables) and the sampled rows' ids, candidates or logits come back; a step is one submission
 * unless it crosses devices. Across devices everything goes through host memory: TP all-reduces
 * read the partial sums back, reduce them in rank order (the group) and write the sum; a
 * non-first PP stage writes its input hidden state, a non-last one reads its output back; the
 * vocabulary slices of a TP last stage are gathered on the host.
 */
export class WebGpuLlamaForward {
  private readonly invFreq: Float64Array;
  private readonly uploaded = new Map<Weight, GpuWeight>();
  private readonly embedding: GpuWeight | undefined;
  private readonly layers: GpuLayer[];
  private readonly finalNorm: GpuTensor | undefined;
  private readonly lmHead: GpuWeight | undefined;
  /** Activations, reused by every step (metadata is uploaded per step). */
  private readonly buffers: StepBufferPool;
  readonly shard: ShardSpec;

  constructor(
    private readonly kernels: WebGpuKernels,
    readonly config: ModelConfig,
    weights: ModelWeights,
    private readonly group?: TensorParallelGroup,
  ) {
    this.shard = weights.shard;
    const { tp, tpRank, isFirstStage, isLastStage } = this.shard;
    if (tp > 1 && (group === undefined || group.size !== tp || group.rank !== tpRank)) {
      throw new RangeError(
        `TP rank ${tpRank} of ${tp} needs a tensor-parallel group of that size and rank ` +
          `(got ${group ? `rank ${group.rank} of ${group.size}` : 'none'})`,
      );
    }
    if (isFirstStage !== !!weights.embedding || isLastStage !== !!(weights.finalNorm && weights.lmHead)) {
      throw new RangeError("the shard's weights lack its stage's embedding or final norm and lm_head");
    }
    this.invFreq = ropeInvFreq(config);
    this.buffers = new StepBufferPool(kernels);
    this.embedding = weights.embedding && this.weight(weights.embedding);
    this.layers = weights.layers.map((layer) => ({
      inputNorm: kernels.upload(layer.inputNorm),
      qkv: this.weight(layer.qkv),
      qkvBias: layer.qkvBias ? kernels.upload(layer.qkvBias) : undefined,
      o: this.weight(layer.o),
      postAttentionNorm: kernels.upload(layer.postAttentionNorm),
      gateUp: this.weight(layer.gateUp),
      down: this.weight(layer.down),
    }));
    this.finalNorm = weights.finalNorm && kernels.upload(weights.finalNorm);
    this.lmHead = weights.lmHead && this.weight(weights.lmHead);
  }

  /** Frees the weight buffers; the forward pass is unusable after. */
  destroy(): void {
    const norms = this.layers.flatMap((l) => [
      l.inputNorm,
      l.postAttentionNorm,
      ...(l.qkvBias ? [l.qkvBias] : []),
    ]);
    destroyAll([...norms, ...(this.finalNorm ? [this.finalNorm] : [])]);
    destroyAll([...this.uploaded.values()].map((w) => w.tensor));
    this.uploaded.clear();
    this.buffers.destroy();
  }

  /** Activation buffers created so far: grows with the largest step, not with the number of steps. */
  get numStepBuffersCreated(): number {
    return this.buffers.numCreated;
  }

  /** Whether the LM head's vocabulary is split over TP ranks: logits must be gathered on the host. */
  get isVocabSplit(): boolean {
    return !!this.group && this.group.size > 1;
  }

  /** Tied embeddings are the same Weight object twice: uploaded once. */
  private weight(w: Weight): GpuWeight {
    let gpu = this.uploaded.get(w);
    if (!gpu) {
      gpu = this.kernels.uploadWeight(w);
      this.uploaded.set(w, gpu);
    }
    return gpu;
  }

  /**
   * Runs this stage's part of one step. Last stage: the logits [numSampled][V] of
   * batch.sampledRows (gathered over TP ranks); other stages: the hidden state [T][H].
   */
  async run(
    batch: ForwardBatch,
    cache: GpuKvCache,
    inputHidden?: Float32Array,
    afterLayer?: AfterLayerHook,
  ): Promise<Float32Array> {
    const hidden = await this.encodeLayers(batch, cache, inputHidden, afterLayer);
    if (!this.shard.isLastStage) return await this.kernels.read(hidden);
    const logits = this.encodeLogits(batch, hidden);
    if (!logits) return new Float32Array(0);
    const local = await this.kernels.read(logits);
    return this.isVocabSplit ? await this.gatherLogits(local, batch.sampledRows.length) : local;
  }

  /** Runs one step and samples greedily on the GPU (a last stage of an unsplit vocabulary): only the ids come back. */
  async runGreedy(batch: ForwardBatch, cache: GpuKvCache, afterLayer?: AfterLayerHook): Promise<Int32Array> {
    this.needWholeVocabulary('greedy ids');
    const hidden = await this.encodeLayers(batch, cache, undefined, afterLayer);
    const logits = this.encodeLogits(batch, hidden);
    if (!logits) return new Int32Array(0);
    const numSampled = batch.sampledRows.length;
    const ids = this.buffers.take('sampledIds', numSampled);
    this.kernels.argmaxRows(ids, logits, numSampled, this.config.vocabSize);
    return await this.kernels.readInt32(ids);
  }

  /**
   * Runs one step and selects each sampled row's k best logits on the GPU, with the weight of
   * the rest when plan.invTemperatures is given: [numSampled][2k] as WebGpuKernels.topKRows lays
   * them out, then [numSampled] tail weights (tailWeights). Only those come back, and the logits
   * of the rows that rowsToRead names after seeing them (a draw the head could not decide).
   */
  async runCandidates(
    batch: ForwardBatch,
    cache: GpuKvCache,
    plan: CandidatesPlan,
    rowsToRead: (candidates: Float32Array) => number[],
    afterLayer?: AfterLayerHook,
  ): Promise<GpuCandidates> {
    this.needWholeVocabulary('sampling candidates');
    const step: GpuTensor[] = [];
    try {
      const hidden = await this.encodeLayers(batch, cache, undefined, afterLayer);
      const logits = this.encodeLogits(batch, hidden);
      if (!logits) return { candidates: new Float32Array(0), logitsRows: new Map() };
      return await selectCandidates(
        this.kernels,
        logits,
        batch.sampledRows.length,
        this.config.vocabSize,
        plan,
        rowsToRead,
        step,
      );
    } finally {
      destroyAll(step);
    }
  }

  private needWholeVocabulary(what: string): void {
    if (!this.shard.isLastStage || this.isVocabSplit || !this.shard.isFirstStage) {
      throw new Error(`${what} on the GPU need a whole model on one device; use run() for a shard`);
    }
  }

  /**
   * Encodes (and, across TP ranks, runs) the stage's layers; returns the hidden state [T][H]
   * tensor. The step's metadata and activations live in the pool's buffers. afterLayer(l) runs
   * once layer l is encoded (its K/V writes included), in layer order.
   */
  private async encodeLayers(
    batch: ForwardBatch,
    cache: GpuKvCache,
    inputHidden: Float32Array | undefined,
    afterLayer: AfterLayerHook | undefined,
  ): Promise<GpuTensor> {
    const k = this.kernels;
    const { hiddenSize, headDim, rmsNormEps, vocabSize } = this.config;
    const { queryHeads, kvHeads, mlpColumns } = this.shard;
    const numHeads = queryHeads.end - queryHeads.start;
    const numKvHeads = kvHeads.end - kvHeads.start;
    const intermediateSize = mlpColumns.end - mlpColumns.start;
    const T = batch.numTokens;
    const qWidth = numHeads * headDim;
    const kvWidth = numKvHeads * headDim;
    const qkvStride = qWidth + 2 * kvWidth;
    if (cache.layout.numKvHeads !== numKvHeads || cache.keys.length !== this.layers.length) {
      throw new RangeError(
        `KV cache holds ${cache.keys.length} layers x ${cache.layout.numKvHeads} KV heads; ` +
          `this shard needs ${this.layers.length} x ${numKvHeads}`,
      );
    }
    for (const id of batch.tokenIds) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new RangeError(`token id ${id} outside the vocabulary of ${vocabSize}`);
      }
    }

    const up = (name: string, data: Float32Array | Int32Array) => this.buffers.upload(name, data);
    const pooled = (name: string, length: number) => this.buffers.take(name, length);
    const { cos, sin } = ropeTables(batch.positions, this.invFreq);
    const cosT = up('ropeCos', cos);
    const sinT = up('ropeSin', sin);
    const slots = up('slots', batch.slots);
    const tokenInfo = up('tokenInfo', tokenSequenceAndPosition(batch));
    const blockTables = up('blockTables', batch.attention.blockTables);
    const normed = pooled('normed', T * hiddenSize);
    const qkv = pooled('qkv', T * qkvStride);
    const attention = pooled('attention', T * qWidth);
    const projected = pooled('projected', T * hiddenSize);
    const gateUp = pooled('gateUp', T * 2 * intermediateSize);
    const activated = pooled('activated', T * intermediateSize);
    const geometry = {
      tokens: T,
      numHeads,
      layout: cache.layout,
      maxBlocksPerSeq: batch.attention.maxBlocksPerSeq,
      rowStride: qkvStride,
      kOffset: qWidth,
      vOffset: qWidth + kvWidth,
      scale: 1 / Math.sqrt(headDim),
    };

    let hidden: GpuTensor;
    if (this.embedding) {
      hidden = pooled('hidden', T * hiddenSize);
      k.embed(hidden, this.embedding, up('tokenIds', batch.tokenIds));
    } else {
      if (inputHidden?.length !== T * hiddenSize) {
        throw new RangeError(
          `stage ${this.shard.ppStage} needs the previous stage's hidden state of ${T} x ${hiddenSize} floats ` +
            `(got ${inputHidden === undefined ? 'none' : inputHidden.length})`,
        );
      }
      hidden = up('inputHidden', inputHidden);
    }
    for (const [l, layer] of this.layers.entries()) {
      k.rmsNorm(normed, hidden, layer.inputNorm, T, rmsNormEps);
      k.matmul(qkv, normed, T, layer.qkv, layer.qkvBias);
      k.rope(qkv, T, numHeads, headDim, qkvStride, cosT, sinT);
      k.rope(qkv, T, numKvHeads, headDim, qkvStride, cosT, sinT, qWidth);
      k.writeKv(cache.keys[l], cache.values[l], qkv, slots, geometry);
      k.pagedAttention(attention, qkv, cache.keys[l], cache.values[l], tokenInfo, blockTables, geometry);
      k.matmul(projected, attention, T, layer.o);
      await this.allReduce(projected);
      k.addInPlace(hidden, projected);
      k.rmsNorm(normed, hidden, layer.postAttentionNorm, T, rmsNormEps);
      k.matmul(gateUp, normed, T, layer.gateUp);
      k.siluMul(activated, gateUp, T, intermediateSize);
      k.matmul(projected, activated, T, layer.down);
      await this.allReduce(projected);
      k.addInPlace(hidden, projected);
      afterLayer?.(l);
    }
    return hidden;
  }

  /** Row-parallel partial sums summed over the TP group through host memory (rank order, as on the CPU). */
  private async allReduce(partial: GpuTensor): Promise<void> {
    if (!this.group || this.group.size === 1) return;
    const host = await this.kernels.read(partial);
    await this.group.allReduceSum(host);
    this.kernels.write(partial, host);
  }

  /** Encodes the final norm and this rank's LM head rows for the sampled rows; null without any. */
  private encodeLogits(batch: ForwardBatch, hidden: GpuTensor): GpuTensor | null {
    const k = this.kernels;
    const { hiddenSize, rmsNormEps } = this.config;
    const numSampled = batch.sampledRows.length;
    if (!this.finalNorm || !this.lmHead)
      throw new Error('unreachable: last stage without final norm or lm_head');
    if (numSampled === 0) {
      k.flush();
      return null;
    }
    const lastHidden = this.buffers.take('lastHidden', numSampled * hiddenSize);
    batch.sampledRows.forEach((row, i) => {
      k.copy(lastHidden, i * hiddenSize, hidden, row * hiddenSize, hiddenSize);
    });
    // A buffer cannot be bound for reading and writing in one dispatch: the norm goes to normed.
    const normed = this.buffers.take('finalNormed', numSampled * hiddenSize);
    k.rmsNorm(normed, lastHidden, this.finalNorm, numSampled, rmsNormEps);
    const logits = this.buffers.take('logits', numSampled * this.lmHead.rows);
    k.matmul(logits, normed, numSampled, this.lmHead);
    return logits;
  }

  /** Every rank's vocabulary slice [numSampled][Vr], gathered on the host into full rows. */
  private async gatherLogits(local: Float32Array, numSampled: number): Promise<Float32Array> {
    const group = this.group!;
    const { vocabSize } = this.config;
    const gathered = new Float32Array(numSampled * vocabSize);
    await group.allGather(local, gathered);
    const logits = new Float32Array(numSampled * vocabSize);
    let offset = 0;
    for (let r = 0; r < group.size; r++) {
      const { start, end } = balancedRange(vocabSize, group.size, r);
      const width = end - start;
      for (let i = 0; i < numSampled; i++) {
        logits.set(gathered.subarray(offset + i * width, offset + (i + 1) * width), i * vocabSize + start);
      }
      offset += numSampled * width;
    }
    return logits;
  }
}

/** (sequence index, position) per token, as i32 pairs. */
function tokenSequenceAndPosition(batch: ForwardBatch): Int32Array {
  const info = new Int32Array(2 * batch.numTokens);
  const { queryStart } = batch.attention;
  for (let s = 0; s + 1 < queryStart.length; s++) {
    for (let t = queryStart[s]; t < queryStart[s + 1]; t++) {
      info[2 * t] = s;
      info[2 * t + 1] = batch.positions[t];
    }
  }
  return info;
}
