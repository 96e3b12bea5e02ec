import type { ModelConfig } from '@seesaw/model';

/**
 * Parameter and byte counts of a Llama-family model, the "W" of the paper's cost model.
 * Weights are 16-bit unless `dtypeBytes` says otherwise.
 */
export interface ModelCosts {
  config: ModelConfig;
  dtypeBytes: number;
  /** Bytes of one activation element (the weights' width on GPUs; 4 in the CPU engine, which computes in f32). */
  computeBytes: number;
  /** Bytes of one cached K/V element (--kv-dtype: 2 for bf16/f16, 4 for f32). */
  kvBytesPerElement: number;
  /** Parameters of one decoder layer: q, k, v, o projections, gate/up/down, two norms. */
  layerParams: number;
  /** Embedding rows, vocab x hidden. */
  embeddingParams: number;
  /** LM head (0 extra when tied to the embedding), plus the final norm. */
  headParams: number;
  totalParams: number;
  totalWeightBytes: number;
  /** K and V of one token in one layer over all KV heads, bytes. */
  kvBytesPerTokenLayer: number;
  /** K and V of one token over all layers, bytes. */
  kvBytesPerToken: number;
}

export function modelCosts(
  config: ModelConfig,
  dtypeBytes = 2,
  computeBytes = dtypeBytes,
  kvBytesPerElement = computeBytes,
): ModelCosts {
  const { hiddenSize: h, numHeads, numKvHeads, headDim: d, intermediateSize, vocabSize, numLayers } = config;
  const attention =
    h * d * (2 * numHeads + 2 * numKvHeads) + (config.attentionBias ? (numHeads + 2 * numKvHeads) * d : 0);
  const mlp = 3 * h * intermediateSize;
  const layerParams = attention + mlp + 2 * h;
  const embeddingParams = vocabSize * h;
  const headParams = (config.tieWordEmbeddings ? 0 : vocabSize * h) + h;
  const totalParams = numLayers * layerParams + embeddingParams + headParams;
  const kvBytesPerTokenLayer = 2 * numKvHeads * d * kvBytesPerElement;
  return {
    config,
    dtypeBytes,
    computeBytes,
    kvBytesPerElement,
    layerParams,
    embeddingParams,
    headParams,
    totalParams,
    totalWeightBytes: totalParams * dtypeBytes,
    kvBytesPerTokenLayer,
    kvBytesPerToken: kvBytesPerTokenLayer * numLayers,
  };
}
