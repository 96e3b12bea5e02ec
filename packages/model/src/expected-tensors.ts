import type { ModelConfig } from './model-config.ts';

export interface ExpectedTensor {
  name: string;
  shape: number[];
}

/**
 * Hugging Face tensor names and shapes for a Llama-family config, in checkpoint order.
 * Linear weights are [outFeatures, inFeatures] (row-major, y = W x).
 */
export function expectedTensors(config: ModelConfig): ExpectedTensor[] {
  const { hiddenSize: h, intermediateSize: m, numHeads, numKvHeads, headDim, vocabSize } = config;
  const qOut = numHeads * headDim;
  const kvOut = numKvHeads * headDim;
  const tensors: ExpectedTensor[] = [{ name: 'model.embed_tokens.weight', shape: [vocabSize, h] }];
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}`;
    tensors.push({ name: `${p}.input_layernorm.weight`, shape: [h] });
    tensors.push({ name: `${p}.self_attn.q_proj.weight`, shape: [qOut, h] });
    if (config.attentionBias) tensors.push({ name: `${p}.self_attn.q_proj.bias`, shape: [qOut] });
    tensors.push({ name: `${p}.self_attn.k_proj.weight`, shape: [kvOut, h] });
    if (config.attentionBias) tensors.push({ name: `${p}.self_attn.k_proj.bias`, shape: [kvOut] });
    tensors.push({ name: `${p}.self_attn.v_proj.weight`, shape: [kvOut, h] });
    if (config.attentionBias) tensors.push({ name: `${p}.self_attn.v_proj.bias`, shape: [kvOut] });
    tensors.push({ name: `${p}.self_attn.o_proj.weight`, shape: [h, qOut] });
    tensors.push({ name: `${p}.post_attention_layernorm.weight`, shape: [h] });
    tensors.push({ name: `${p}.mlp.gate_proj.weight`, shape: [m, h] });
    tensors.push({ name: `${p}.mlp.up_proj.weight`, shape: [m, h] });
    tensors.push({ name: `${p}.mlp.down_proj.weight`, shape: [h, m] });
  }
  tensors.push({ name: 'model.norm.weight', shape: [h] });
  if (!config.tieWordEmbeddings) tensors.push({ name: 'lm_head.weight', shape: [vocabSize, h] });
  return tensors;
}
