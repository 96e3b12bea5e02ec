import type { Checkpoint } from './checkpoint.ts';
import { decodeValues } from './dtype-convert.ts';
import { CheckpointError } from './safetensors-format.ts';

/** One decoder layer, every tensor in float64, linear weights row-major [out][in]. */
export interface ReferenceLayerWeights {
  inputNorm: Float64Array; // [hidden]
  qProj: Float64Array; // [numHeads*headDim][hidden]
  kProj: Float64Array; // [numKvHeads*headDim][hidden]
  vProj: Float64Array; // [numKvHeads*headDim][hidden]
  qBias: Float64Array | null; // [numHeads*headDim]
  kBias: Float64Array | null; // [numKvHeads*headDim]
  vBias: Float64Array | null; // [numKvHeads*headDim]
  oProj: Float64Array; // [hidden][numHeads*headDim]
  postAttentionNorm: Float64Array; // [hidden]
  gateProj: Float64Array; // [intermediate][hidden]
  upProj: Float64Array; // [intermediate][hidden]
  downProj: Float64Array; // [hidden][intermediate]
}

export interface ReferenceWeights {
  embedTokens: Float64Array; // [vocab][hidden]
  layers: ReferenceLayerWeights[];
  finalNorm: Float64Array; // [hidden]
  /** [vocab][hidden]; the very same array as embedTokens when embeddings are tied. */
  lmHead: Float64Array;
}

/** A whole tensor decoded to float64 (exact for F32, F16 and BF16). */
export function readTensorF64(ckpt: Checkpoint, name: string): Float64Array {
  const info = ckpt.info(name);
  const bytes = new Uint8Array(info.byteLength);
  ckpt.readBytes(name, bytes);
  return decodeValues(bytes, info.dtype);
}

/** Loads every tensor of a validated checkpoint as float64 (8 bytes a parameter: tiny/small only). */
export function loadReferenceWeights(ckpt: Checkpoint): ReferenceWeights {
  ckpt.validate();
  const { config } = ckpt;
  const read = (name: string) => readTensorF64(ckpt, name);
  const layers: ReferenceLayerWeights[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}`;
    layers.push({
      inputNorm: read(`${p}.input_layernorm.weight`),
      qProj: read(`${p}.self_attn.q_proj.weight`),
      kProj: read(`${p}.self_attn.k_proj.weight`),
      vProj: read(`${p}.self_attn.v_proj.weight`),
      qBias: config.attentionBias ? read(`${p}.self_attn.q_proj.bias`) : null,
      kBias: config.attentionBias ? read(`${p}.self_attn.k_proj.bias`) : null,
      vBias: config.attentionBias ? read(`${p}.self_attn.v_proj.bias`) : null,
      oProj: read(`${p}.self_attn.o_proj.weight`),
      postAttentionNorm: read(`${p}.post_attention_layernorm.weight`),
      gateProj: read(`${p}.mlp.gate_proj.weight`),
      upProj: read(`${p}.mlp.up_proj.weight`),
      downProj: read(`${p}.mlp.down_proj.weight`),
    });
  }
  const embedTokens = read('model.embed_tokens.weight');
  if (!config.tieWordEmbeddings && !ckpt.has('lm_head.weight')) {
    throw new CheckpointError(`${ckpt.dir}: missing tensor "lm_head.weight"`);
  }
  return {
    embedTokens,
    layers,
    finalNorm: read('model.norm.weight'),
    lmHead: config.tieWordEmbeddings ? embedTokens : read('lm_head.weight'),
  };
}
