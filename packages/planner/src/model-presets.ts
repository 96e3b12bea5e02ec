import type { ModelConfig } from '@seesaw/model';

/** Shape of a Llama-family model, enough for the cost model (fp16/bf16 weights, GQA). */
interface PresetShape {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  ropeTheta: number;
}

/**
 * Shapes from the models' published config.json files. llama-3-15b is the Seesaw paper's
 * "15B Llama-3 variant", whose exact shape is not published: we chose a Llama-3-8B layer
 * widened to hidden 5120 (40 query heads, 8 KV heads, head_dim 128, MLP 14336) over 48
 * layers with the Llama-3 vocabulary: 14.9e9 parameters.
 */
const PRESET_SHAPES = {
  'llama-2-7b': {
    hiddenSize: 4096,
    intermediateSize: 11008,
    numLayers: 32,
    numHeads: 32,
    numKvHeads: 32,
    vocabSize: 32000,
    maxPositionEmbeddings: 4096,
    ropeTheta: 10000,
  },
  'llama-2-13b': {
    hiddenSize: 5120,
    intermediateSize: 13824,
    numLayers: 40,
    numHeads: 40,
    numKvHeads: 40,
    vocabSize: 32000,
    maxPositionEmbeddings: 4096,
    ropeTheta: 10000,
  },
  'llama-2-70b': {
    hiddenSize: 8192,
    intermediateSize: 28672,
    numLayers: 80,
    numHeads: 64,
    numKvHeads: 8,
    vocabSize: 32000,
    maxPositionEmbeddings: 4096,
    ropeTheta: 10000,
  },
  'llama-3-8b': {
    hiddenSize: 4096,
    intermediateSize: 14336,
    numLayers: 32,
    numHeads: 32,
    numKvHeads: 8,
    vocabSize: 128256,
    maxPositionEmbeddings: 8192,
    ropeTheta: 500000,
  },
  'llama-3-15b': {
    hiddenSize: 5120,
    intermediateSize: 14336,
    numLayers: 48,
    numHeads: 40,
    numKvHeads: 8,
    vocabSize: 128256,
    maxPositionEmbeddings: 8192,
    ropeTheta: 500000,
  },
  'llama-3-70b': {
    hiddenSize: 8192,
    intermediateSize: 28672,
    numLayers: 80,
    numHeads: 64,
    numKvHeads: 8,
    vocabSize: 128256,
    maxPositionEmbeddings: 8192,
    ropeTheta: 500000,
  },
  'codellama-34b': {
    hiddenSize: 8192,
    intermediateSize: 22016,
    numLayers: 48,
    numHeads: 64,
    numKvHeads: 8,
    vocabSize: 32000,
    maxPositionEmbeddings: 16384,
    ropeTheta: 1000000,
  },
} satisfies Record<string, PresetShape>;

export type ModelPresetName = keyof typeof PRESET_SHAPES;
export const MODEL_PRESET_NAMES = Object.keys(PRESET_SHAPES) as ModelPresetName[];

export function isModelPresetName(name: string): name is ModelPresetName {
  return Object.hasOwn(PRESET_SHAPES, name);
}

/** The preset as a ModelConfig (fp16 Llama; token ids are irrelevant to the planner). */
export function modelPreset(name: string): ModelConfig {
  if (!isModelPresetName(name)) {
    throw new RangeError(`unknown model preset '${name}' (presets: ${MODEL_PRESET_NAMES.join(', ')})`);
  }
  const shape: PresetShape = PRESET_SHAPES[name];
  return {
    architecture: 'LlamaForCausalLM',
    ...shape,
    headDim: shape.hiddenSize / shape.numHeads,
    rmsNormEps: 1e-5,
    ropeScaling: null,
    attentionBias: false,
    tieWordEmbeddings: false,
    bosTokenId: 1,
    eosTokenIds: [2],
    torchDtype: 'float16',
  };
}
