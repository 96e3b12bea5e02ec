import type { ModelConfig } from '@seesaw/model';

/**
 * Parameter and byte counts of a Llama-family model, the "W" of the paper's cost model.
 * Weights are 16-bit unless `dtypeBytes` says otherwise.
 */
export interface ModelCosts {
  config: ModelConfig;
  dtypeBytes: number;
  /** Bytes of one activation or cached K/V element (the weights' width on GPUs; 4 in the CPU engine, which computes and caches f32). */
  computeBytes: number;
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

export function modelCosts(config: ModelConfig, dtypeBytes = 2, computeBytes = dtypeBytes): ModelCosts {
  const { hiddenSize: h, numHeads, numKvHeads, headDim: d, intermediateSize, vocabSize, numLayers } = config;
  const attention =
    h * d * (2 * numHeads + 2 * numKvHeads) + (config.attentionBias ? (numHeads + 2 * numKvHeads) * d : 0);
  const mlp = 3 * h * intermediateSize;
  const layerParams = attention + mlp + 2 * h;
  const embeddingParams = vocabSize * h;
  const headParams = (config.tieWordEmbeddings ? 0 : vocabSize * h) + h;
  const totalParams = numLayers * layerParams + embeddingParams + headParams;
  const kvBytesPerTokenLayer = 2 * numKvHeads * d * computeBytes;
  return {
    config,
    dtypeBytes,
    computeBytes,
    layerParams,
    embeddingParams,
    headParams,
    totalParams,
    totalWeightBytes: totalParams * dtypeBytes,
    kvBytesPerTokenLayer,
    kvBytesPerToken: kvBytesPerTokenLayer * numLayers,
  };
}
