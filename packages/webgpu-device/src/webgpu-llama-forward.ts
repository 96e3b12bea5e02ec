import type { ForwardBatch, ModelWeights } from '@seesaw/gpu-actor';
import { ropeTables } from '@seesaw/gpu-actor';
import type { KvLayout, Weight } from '@seesaw/kernels';
import { type ModelConfig, ropeInvFreq } from '@seesaw/model';
import type { GpuTensor, GpuWeight, WebGpuKernels } from './webgpu-kernels.ts';

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

/** The device tier of the KV cache in GPU buffers: per layer K and V, [numBlocks][numKvHeads][blockSize][headDim]. */
export class GpuKvCache {
  readonly layout: KvLayout;
  readonly keys: GpuTensor[];
  readonly values: GpuTensor[];

  constructor(
    kernels: WebGpuKernels,
    config: ModelConfig,
    readonly numBlocks: number,
    blockSize: number,
  ) {
    this.layout = { numKvHeads: config.numKvHeads, headDim: config.headDim, blockSize };
    const floats = numBlocks * blockSize * config.numKvHeads * config.headDim;
    this.keys = Array.from({ length: config.numLayers }, () => kernels.allocate(floats));
    this.values = Array.from({ length: config.numLayers }, () => kernels.allocate(floats));
  }

  /** Frees the buffers (deferred by WebGPU until submitted work that reads them ends). */
  destroy(): void {
    destroyAll(this.keys);
    destroyAll(this.values);
  }
}

/**
 * The Llama forward pass of a whole model (tp = pp = 1) on one WebGPU device: the same steps as
 * the CPU LlamaForward, with the weights uploaded once at construction. Per step only the batch
 * metadata goes up (token ids, RoPE rows, slots, block tables) and the sampled rows' logits come
 * back. The step is encoded as one submission.
 */
export class WebGpuLlamaForward {
  private readonly invFreq: Float64Array;
  private readonly uploaded = new Map<Weight, GpuWeight>();
  private readonly embedding: GpuWeight;
  private readonly layers: GpuLayer[];
  private readonly finalNorm: GpuTensor;
  private readonly lmHead: GpuWeight;

  constructor(
    private readonly kernels: WebGpuKernels,
    readonly config: ModelConfig,
    weights: ModelWeights,
  ) {
    const { tp, pp } = weights.shard;
    if (tp !== 1 || pp !== 1 || !weights.embedding || !weights.finalNorm || !weights.lmHead) {
      throw new RangeError(`the WebGPU forward runs whole models only (got a tp ${tp} x pp ${pp} shard)`);
    }
    this.invFreq = ropeInvFreq(config);
    this.embedding = this.weight(weights.embedding);
    this.layers = weights.layers.map((layer) => ({
      inputNorm: kernels.upload(layer.inputNorm),
      qkv: this.weight(layer.qkv),
      qkvBias: layer.qkvBias ? kernels.upload(layer.qkvBias) : undefined,
      o: this.weight(layer.o),
      postAttentionNorm: kernels.upload(layer.postAttentionNorm),
      gateUp: this.weight(layer.gateUp),
      down: this.weight(layer.down),
    }));
    this.finalNorm = kernels.upload(weights.finalNorm);
    this.lmHead = this.weight(weights.lmHead);
  }

  /** Frees the weight buffers; the forward pass is unusable after. */
  destroy(): void {
    const layers = this.layers.flatMap((l) => [
      l.inputNorm,
      l.postAttentionNorm,
      ...(l.qkvBias ? [l.qkvBias] : []),
    ]);
    destroyAll([...layers, this.finalNorm, ...[...this.uploaded.values()].map((w) => w.tensor)]);
    this.uploaded.clear();
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

  /** Runs one step; returns the logits [numSampled][V] of batch.sampledRows. */
  async run(batch: ForwardBatch, cache: GpuKvCache): Promise<Float32Array> {
    const { logits, step } = this.encodeStep(batch, cache);
    try {
      return logits ? await this.kernels.read(logits) : new Float32Array(0);
    } finally {
      destroyAll(step);
    }
  }

  /** Runs one step and samples greedily on the GPU: only the token ids of batch.sampledRows come back. */
  async runGreedy(batch: ForwardBatch, cache: GpuKvCache): Promise<Int32Array> {
    const { logits, step } = this.encodeStep(batch, cache);
    try {
      if (!logits) return new Int32Array(0);
      const numSampled = batch.sampledRows.length;
      const ids = track(step, this.kernels.upload(new Int32Array(numSampled)));
      this.kernels.argmaxRows(ids, logits, numSampled, this.config.vocabSize);
      return await this.kernels.readInt32(ids);
    } finally {
      destroyAll(step);
    }
  }

  /**
   * Runs one step and selects each sampled row's k best logits on the GPU: only those come back,
   * [numSampled][2k] as WebGpuKernels.topKRows lays them out (k <= vocabSize).
   */
  async runTopK(batch: ForwardBatch, cache: GpuKvCache, k: number): Promise<Float32Array> {
    const { logits, step } = this.encodeStep(batch, cache);
    try {
      if (!logits) return new Float32Array(0);
      const numSampled = batch.sampledRows.length;
      const candidates = track(step, this.kernels.allocate(numSampled * 2 * k));
      this.kernels.topKRows(candidates, logits, numSampled, this.config.vocabSize, k);
      return await this.kernels.read(candidates);
    } finally {
      destroyAll(step);
    }
  }

  /**
   * Encodes the step's layers and, when rows are sampled, the final norm and LM head; returns the
   * logits tensor (none without sampled rows) and the step's buffers for the caller to destroy.
   */
  private encodeStep(
    batch: ForwardBatch,
    cache: GpuKvCache,
  ): { logits: GpuTensor | null; step: GpuTensor[] } {
    const k = this.kernels;
    const { hiddenSize, headDim, numHeads, numKvHeads, intermediateSize, rmsNormEps, vocabSize } =
      this.config;
    const T = batch.numTokens;
    const qWidth = numHeads * headDim;
    const kvWidth = numKvHeads * headDim;
    const qkvStride = qWidth + 2 * kvWidth;
    for (const id of batch.tokenIds) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new RangeError(`token id ${id} outside the vocabulary of ${vocabSize}`);
      }
    }

    const step: GpuTensor[] = [];
    const up = (data: Float32Array | Int32Array) => track(step, k.upload(data));
    const alloc = (length: number) => track(step, k.allocate(length));
    const { cos, sin } = ropeTables(batch.positions, this.invFreq);
    const cosT = up(cos);
    const sinT = up(sin);
    const ids = up(batch.tokenIds);
    const slots = up(batch.slots);
    const tokenInfo = up(tokenSequenceAndPosition(batch));
    const blockTables = up(batch.attention.blockTables);
    const hidden = alloc(T * hiddenSize);
    const normed = alloc(T * hiddenSize);
    const qkv = alloc(T * qkvStride);
    const attention = alloc(T * qWidth);
    const projected = alloc(T * hiddenSize);
    const gateUp = alloc(T * 2 * intermediateSize);
    const activated = alloc(T * intermediateSize);
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

    k.embed(hidden, this.embedding, ids);
    for (const [l, layer] of this.layers.entries()) {
      k.rmsNorm(normed, hidden, layer.inputNorm, T, rmsNormEps);
      k.matmul(qkv, normed, T, layer.qkv, layer.qkvBias);
      k.rope(qkv, T, numHeads, headDim, qkvStride, cosT, sinT);
      k.rope(qkv, T, numKvHeads, headDim, qkvStride, cosT, sinT, qWidth);
      k.writeKv(cache.keys[l], cache.values[l], qkv, slots, geometry);
      k.pagedAttention(attention, qkv, cache.keys[l], cache.values[l], tokenInfo, blockTables, geometry);
      k.matmul(projected, attention, T, layer.o);
      k.addInPlace(hidden, projected);
      k.rmsNorm(normed, hidden, layer.postAttentionNorm, T, rmsNormEps);
      k.matmul(gateUp, normed, T, layer.gateUp);
      k.siluMul(activated, gateUp, T, intermediateSize);
      k.matmul(projected, activated, T, layer.down);
      k.addInPlace(hidden, projected);
    }

    const numSampled = batch.sampledRows.length;
    if (numSampled === 0) {
      k.flush();
      return { logits: null, step };
    }
    const lastHidden = alloc(numSampled * hiddenSize);
    batch.sampledRows.forEach((row, i) => {
      k.copy(lastHidden, i * hiddenSize, hidden, row * hiddenSize, hiddenSize);
    });
    // A buffer cannot be bound for reading and writing in one dispatch: the norm goes to normed.
    k.rmsNorm(normed, lastHidden, this.finalNorm, numSampled, rmsNormEps);
    const logits = alloc(numSampled * vocabSize);
    k.matmul(logits, normed, numSampled, this.lmHead);
    return { logits, step };
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

function track(list: GpuTensor[], tensor: GpuTensor): GpuTensor {
  list.push(tensor);
  return tensor;
}

/** Destroying buffers that submitted work still reads is deferred by WebGPU until it ends. */
function destroyAll(list: GpuTensor[]): void {
  for (const t of list) t.buffer.destroy();
}
