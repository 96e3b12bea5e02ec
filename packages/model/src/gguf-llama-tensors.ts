import type { ModelConfig } from './model-config.ts';

/**
 * llama.cpp's tensor names for the Hugging Face Llama names (convert_hf_to_gguf's tensor map for
 * the "llama" architecture).
 */
const LAYER_NAMES: ReadonlyArray<[hf: string, gguf: string]> = [
  ['input_layernorm.weight', 'attn_norm.weight'],
  ['self_attn.q_proj.weight', 'attn_q.weight'],
  ['self_attn.q_proj.bias', 'attn_q.bias'],
  ['self_attn.k_proj.weight', 'attn_k.weight'],
  ['self_attn.k_proj.bias', 'attn_k.bias'],
  ['self_attn.v_proj.weight', 'attn_v.weight'],
  ['self_attn.v_proj.bias', 'attn_v.bias'],
  ['self_attn.o_proj.weight', 'attn_output.weight'],
  ['post_attention_layernorm.weight', 'ffn_norm.weight'],
  ['mlp.gate_proj.weight', 'ffn_gate.weight'],
  ['mlp.up_proj.weight', 'ffn_up.weight'],
  ['mlp.down_proj.weight', 'ffn_down.weight'],
];

const GLOBAL_NAMES: ReadonlyArray<[hf: string, gguf: string]> = [
  ['model.embed_tokens.weight', 'token_embd.weight'],
  ['model.norm.weight', 'output_norm.weight'],
  ['lm_head.weight', 'output.weight'],
];

const LAYER_HF = /^model\.layers\.(\d+)\.(.+)$/;
const LAYER_GGUF = /^blk\.(\d+)\.(.+)$/;

/** GGUF name of a Hugging Face tensor name, or null when llama.cpp has no such tensor. */
export function ggufTensorName(hfName: string): string | null {
  const global = GLOBAL_NAMES.find(([hf]) => hf === hfName);
  if (global !== undefined) return global[1];
  const m = LAYER_HF.exec(hfName);
  if (m === null) return null;
  const entry = LAYER_NAMES.find(([hf]) => hf === m[2]);
  return entry === undefined ? null : `blk.${m[1]}.${entry[1]}`;
}

/** Hugging Face name of a GGUF tensor name, or null for tensors we do not map (e.g. rope_freqs). */
export function hfTensorName(ggufName: string): string | null {
  const global = GLOBAL_NAMES.find(([, g]) => g === ggufName);
  if (global !== undefined) return global[0];
  const m = LAYER_GGUF.exec(ggufName);
  if (m === null) return null;
  const entry = LAYER_NAMES.find(([, g]) => g === m[2]);
  return entry === undefined ? null : `model.layers.${m[1]}.${entry[0]}`;
}

/**
 * Heads whose rows llama.cpp's converter permuted, for a Hugging Face tensor name: q_proj by the
 * attention heads, k_proj by the KV heads (weights and biases); null for every other tensor.
 */
export function permutedHeads(hfName: string, config: ModelConfig): number | null {
  if (/\.self_attn\.q_proj\.(weight|bias)$/.test(hfName)) return config.numHeads;
  if (/\.self_attn\.k_proj\.(weight|bias)$/.test(hfName)) return config.numKvHeads;
  return null;
}

/**
 * The GGUF row holding Hugging Face row `hfRow` of a q/k projection. HF orders each head's rows
 * as [first halves of the rotary pairs | second halves]; llama.cpp interleaves them (its rope
 * rotates adjacent pairs): HF row s*(d/2) + j of a head is GGUF row 2j + s of the same head.
 */
export function ggufRowOfHfRow(hfRow: number, headDim: number): number {
  const head = Math.floor(hfRow / headDim);
  const within = hfRow % headDim;
  const halfDim = headDim / 2;
  const s = within < halfDim ? 0 : 1;
  const j = within - s * halfDim;
  return head * headDim + 2 * j + s;
}

/** Inverse of ggufRowOfHfRow. */
export function hfRowOfGgufRow(ggufRow: number, headDim: number): number {
  const head = Math.floor(ggufRow / headDim);
  const within = ggufRow % headDim;
  return head * headDim + (within % 2) * (headDim / 2) + Math.floor(within / 2);
}
