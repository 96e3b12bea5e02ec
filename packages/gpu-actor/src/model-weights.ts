import type { Weight, WeightDType } from '@seesaw/kernels';
import { type Checkpoint, CheckpointError, type TensorDType } from '@seesaw/model';
import { bytesToFloat32 } from './tensor-convert.ts';

/** One decoder layer's weights, with the projections that share an input fused row-wise. */
export interface LayerWeights {
  inputNorm: Float32Array;
  /** [q rows | k rows | v rows][hidden]: one pass over the input makes q, k and v. */
  qkv: Weight;
  qkvBias: Float32Array | undefined;
  o: Weight;
  postAttentionNorm: Float32Array;
  /** [gate rows | up rows][hidden]: one pass makes both halves of SwiGLU. */
  gateUp: Weight;
  down: Weight;
}

export interface ModelWeights {
  embedding: Weight;
  layers: LayerWeights[];
  finalNorm: Float32Array;
  /** The embedding table itself when the checkpoint ties them. */
  lmHead: Weight;
  /** Bytes held by all weights (matrices in their stored dtype, vectors as f32). */
  numBytes: number;
}

const KERNEL_DTYPE: Record<TensorDType, WeightDType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

/**
 * Reads 2-D tensors that share a column count into one row-major matrix, each tensor's bytes
 * landing straight at its rows' offset: no intermediate copy, no widening.
 */
function loadStackedMatrix(checkpoint: Checkpoint, names: string[]): Weight {
  const infos = names.map((name) => checkpoint.info(name));
  const dtype = infos[0].dtype;
  const cols = infos[0].shape[1];
  for (const info of infos) {
    if (info.dtype !== dtype || info.shape.length !== 2 || info.shape[1] !== cols) {
      throw new CheckpointError(
        `${checkpoint.dir}: tensors ${names.join(', ')} must be 2-D with one dtype and ${cols} columns ` +
          `to be fused (got ${info.name}: ${info.dtype} [${info.shape.join(', ')}])`,
      );
    }
  }
  const rows = infos.reduce((sum, info) => sum + info.shape[0], 0);
  const data = dtype === 'F32' ? new Float32Array(rows * cols) : new Uint16Array(rows * cols);
  let byteOffset = 0;
  for (const info of infos) {
    checkpoint.readBytes(info.name, new Uint8Array(data.buffer, byteOffset, info.byteLength));
    byteOffset += info.byteLength;
  }
  return { dtype: KERNEL_DTYPE[dtype], rows, cols, data };
}

function loadVector(checkpoint: Checkpoint, name: string): Float32Array {
  const info = checkpoint.info(name);
  const bytes = new Uint8Array(info.byteLength);
  checkpoint.readBytes(name, bytes);
  return bytesToFloat32(bytes, info.dtype);
}

function loadStackedVector(checkpoint: Checkpoint, names: string[]): Float32Array {
  const parts = names.map((name) => loadVector(checkpoint, name));
  const out = new Float32Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function weightBytes(weight: Weight): number {
  return weight.data.byteLength;
}

/** Loads every weight of a Llama-family checkpoint after validating names, shapes and dtypes. */
export function loadModelWeights(checkpoint: Checkpoint): ModelWeights {
  checkpoint.validate();
  const config = checkpoint.config;
  const layers: LayerWeights[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    const prefix = `model.layers.${i}`;
    const attention = ['q_proj', 'k_proj', 'v_proj'].map((p) => `${prefix}.self_attn.${p}`);
    layers.push({
      inputNorm: loadVector(checkpoint, `${prefix}.input_layernorm.weight`),
      qkv: loadStackedMatrix(
        checkpoint,
        attention.map((p) => `${p}.weight`),
      ),
      qkvBias: config.attentionBias
        ? loadStackedVector(
            checkpoint,
            attention.map((p) => `${p}.bias`),
          )
        : undefined,
      o: loadStackedMatrix(checkpoint, [`${prefix}.self_attn.o_proj.weight`]),
      postAttentionNorm: loadVector(checkpoint, `${prefix}.post_attention_layernorm.weight`),
      gateUp: loadStackedMatrix(checkpoint, [
        `${prefix}.mlp.gate_proj.weight`,
        `${prefix}.mlp.up_proj.weight`,
      ]),
      down: loadStackedMatrix(checkpoint, [`${prefix}.mlp.down_proj.weight`]),
    });
  }
  const embedding = loadStackedMatrix(checkpoint, ['model.embed_tokens.weight']);
  const lmHead = config.tieWordEmbeddings ? embedding : loadStackedMatrix(checkpoint, ['lm_head.weight']);
  const finalNorm = loadVector(checkpoint, 'model.norm.weight');

  let numBytes = weightBytes(embedding) + finalNorm.byteLength;
  if (lmHead !== embedding) numBytes += weightBytes(lmHead);
  for (const layer of layers) {
    numBytes +=
      layer.inputNorm.byteLength + layer.postAttentionNorm.byteLength + (layer.qkvBias?.byteLength ?? 0);
    numBytes +=
      weightBytes(layer.qkv) + weightBytes(layer.o) + weightBytes(layer.gateUp) + weightBytes(layer.down);
  }
  return { embedding, layers, finalNorm, lmHead, numBytes };
}
