export type ModelShapeName = 'tiny' | 'small' | 'medium';

export interface ModelShape {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  maxPositionEmbeddings: number;
  ropeTheta: number;
  rmsNormEps: number;
  bosTokenId: number;
  eosTokenId: number;
}

const COMMON = {
  maxPositionEmbeddings: 2048,
  ropeTheta: 10000,
  rmsNormEps: 1e-5,
  bosTokenId: 1,
  eosTokenId: 2,
};

/** Generated-checkpoint shapes; medium is TinyLlama-1.1B's shape. */
export const MODEL_SHAPES: Record<ModelShapeName, ModelShape> = {
  tiny: {
    hidden: 256,
    layers: 4,
    heads: 8,
    kvHeads: 4,
    headDim: 32,
    intermediate: 768,
    vocab: 2048,
    ...COMMON,
  },
  small: {
    hidden: 768,
    layers: 12,
    heads: 12,
    kvHeads: 4,
    headDim: 64,
    intermediate: 2048,
    vocab: 32000,
    ...COMMON,
  },
  medium: {
    hidden: 2048,
    layers: 22,
    heads: 32,
    kvHeads: 4,
    headDim: 64,
    intermediate: 5632,
    vocab: 32000,
    ...COMMON,
  },
};

export function isModelShapeName(name: string): name is ModelShapeName {
  return Object.hasOwn(MODEL_SHAPES, name);
}
