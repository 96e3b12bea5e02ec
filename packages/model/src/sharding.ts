import type { ShardPositionData, TensorSliceData } from '@seesaw/protocol';
import type { ModelConfig } from './model-config.ts';
import { validateForModel } from './parallel-config.ts';

/** Half-open index range [start, end). */
export interface IndexRange {
  start: number;
  end: number;
}

/**
 * The part of one checkpoint tensor a shard reads. 'rows' = rows [start, end) of a 2-D tensor
 * (elements [start, end) of a 1-D one): one contiguous byte range. 'columns' = columns
 * [start, end) of every row of a 2-D tensor. Whole tensors are 'rows' over all rows.
 */
export type TensorSlice = TensorSliceData;

/** One decoder layer's slices. Bias slices exist only when the model has attention biases. */
export interface LayerSlices {
  layer: number;
  inputNorm: TensorSlice;
  q: TensorSlice;
  k: TensorSlice;
  v: TensorSlice;
  qBias?: TensorSlice;
  kBias?: TensorSlice;
  vBias?: TensorSlice;
  /** Row-parallel: the columns that multiply this rank's attention heads. */
  o: TensorSlice;
  postAttentionNorm: TensorSlice;
  gate: TensorSlice;
  up: TensorSlice;
  /** Row-parallel: the columns that multiply this rank's MLP activations. */
  down: TensorSlice;
}

/** Which TP rank and pipeline stage a shard is. */
export type ShardPosition = ShardPositionData;

/** What one (tpRank, ppStage) device holds and computes. */
export interface ShardSpec extends ShardPosition {
  isFirstStage: boolean;
  isLastStage: boolean;
  /** Decoder layers of this stage. */
  layers: IndexRange;
  /** Query heads, KV heads, MLP intermediate columns and vocabulary rows of this TP rank. */
  queryHeads: IndexRange;
  kvHeads: IndexRange;
  mlpColumns: IndexRange;
  vocabRows: IndexRange;
  /** The whole embedding table: first stage only. */
  embedding?: TensorSlice;
  layerSlices: LayerSlices[];
  /** Replicated final norm: last stage only. */
  finalNorm?: TensorSlice;
  /** Vocab-parallel rows of lm_head (of embed_tokens when tied): last stage only. */
  lmHead?: TensorSlice;
}

/**
 * Part `index` of `total` items split into `parts` near-equal contiguous ranges; the first
 * total % parts ranges take one extra item.
 */
export function balancedRange(total: number, parts: number, index: number): IndexRange {
  if (!(Number.isInteger(parts) && parts >= 1 && Number.isInteger(index) && index >= 0 && index < parts)) {
    throw new RangeError(`part ${index} of ${parts} is not a valid split`);
  }
  const base = Math.floor(total / parts);
  const extra = total % parts;
  const start = index * base + Math.min(index, extra);
  return { start, end: start + base + (index < extra ? 1 : 0) };
}

function rows(name: string, range: IndexRange): TensorSlice {
  return { name, axis: 'rows', start: range.start, end: range.end };
}

function columns(name: string, range: IndexRange): TensorSlice {
  return { name, axis: 'columns', start: range.start, end: range.end };
}

function scaled(range: IndexRange, factor: number): IndexRange {
  return { start: range.start * factor, end: range.end * factor };
}

function layerSlices(config: ModelConfig, layer: number, spec: ShardSpec): LayerSlices {
  const p = `model.layers.${layer}`;
  const { hiddenSize, headDim } = config;
  // q/k/v rows are [head][headDim] blocks, so a head range scales by headDim.
  const qRows = scaled(spec.queryHeads, headDim);
  const kvRows = scaled(spec.kvHeads, headDim);
  const whole = (n: number): IndexRange => ({ start: 0, end: n });
  const slices: LayerSlices = {
    layer,
    inputNorm: rows(`${p}.input_layernorm.weight`, whole(hiddenSize)),
    q: rows(`${p}.self_attn.q_proj.weight`, qRows),
    k: rows(`${p}.self_attn.k_proj.weight`, kvRows),
    v: rows(`${p}.self_attn.v_proj.weight`, kvRows),
    o: columns(`${p}.self_attn.o_proj.weight`, qRows),
    postAttentionNorm: rows(`${p}.post_attention_layernorm.weight`, whole(hiddenSize)),
    gate: rows(`${p}.mlp.gate_proj.weight`, spec.mlpColumns),
    up: rows(`${p}.mlp.up_proj.weight`, spec.mlpColumns),
    down: columns(`${p}.mlp.down_proj.weight`, spec.mlpColumns),
  };
  if (config.attentionBias) {
    slices.qBias = rows(`${p}.self_attn.q_proj.bias`, qRows);
    slices.kBias = rows(`${p}.self_attn.k_proj.bias`, kvRows);
    slices.vBias = rows(`${p}.self_attn.v_proj.bias`, kvRows);
  }
  return slices;
}

/**
 * The shard of (tpRank, ppStage): Megatron-style column-parallel q/k/v and gate/up (rows of the
 * rank's heads / MLP columns), row-parallel o_proj and down_proj (matching columns; their
 * outputs are partial sums that the TP group all-reduces), vocab-parallel lm_head (rows of the
 * rank's vocabulary slice; logits are all-gathered). Layers split over stages with
 * balancedRange. Norms are replicated on every rank that needs them.
 */
export function shardSpec(config: ModelConfig, position: ShardPosition): ShardSpec {
  const { tp, tpRank, pp, ppStage } = position;
  validateForModel({ dp: 1, tp, pp }, config);
  if (!(Number.isInteger(tpRank) && tpRank >= 0 && tpRank < tp)) {
    throw new RangeError(`TP rank ${tpRank} outside [0, ${tp})`);
  }
  if (!(Number.isInteger(ppStage) && ppStage >= 0 && ppStage < pp)) {
    throw new RangeError(`pipeline stage ${ppStage} outside [0, ${pp})`);
  }
  const isFirstStage = ppStage === 0;
  const isLastStage = ppStage === pp - 1;
  const spec: ShardSpec = {
    ...position,
    isFirstStage,
    isLastStage,
    layers: balancedRange(config.numLayers, pp, ppStage),
    queryHeads: balancedRange(config.numHeads, tp, tpRank),
    kvHeads: balancedRange(config.numKvHeads, tp, tpRank),
    mlpColumns: balancedRange(config.intermediateSize, tp, tpRank),
    vocabRows: balancedRange(config.vocabSize, tp, tpRank),
    layerSlices: [],
  };
  for (let l = spec.layers.start; l < spec.layers.end; l++)
    spec.layerSlices.push(layerSlices(config, l, spec));
  if (isFirstStage) spec.embedding = rows('model.embed_tokens.weight', { start: 0, end: config.vocabSize });
  if (isLastStage) {
    spec.finalNorm = rows('model.norm.weight', { start: 0, end: config.hiddenSize });
    const lmHeadName = config.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
    spec.lmHead = rows(lmHeadName, spec.vocabRows);
  }
  return spec;
}

/** The whole model on one device. */
export function fullShardSpec(config: ModelConfig): ShardSpec {
  return shardSpec(config, { tp: 1, tpRank: 0, pp: 1, ppStage: 0 });
}

/** Every slice a shard reads, embedding first, then layer by layer, then final norm and lm_head. */
export function shardTensorSlices(spec: ShardSpec): TensorSlice[] {
  const out: TensorSlice[] = [];
  if (spec.embedding) out.push(spec.embedding);
  for (const layer of spec.layerSlices) {
    const { inputNorm, q, k, v, qBias, kBias, vBias, o, postAttentionNorm, gate, up, down } = layer;
    out.push(inputNorm, q, k, v);
    for (const bias of [qBias, kBias, vBias]) if (bias) out.push(bias);
    out.push(o, postAttentionNorm, gate, up, down);
  }
  if (spec.finalNorm) out.push(spec.finalNorm);
  if (spec.lmHead) out.push(spec.lmHead);
  return out;
}
