import { packQuantizedWeight, type Weight } from '@seesaw/kernels';
import { type Checkpoint, decodeValues, quantize, type TensorSlice } from '@seesaw/model';
import type { ModelWeights } from './model-weights.ts';

type BlockType = 'q8_0' | 'q4_0';
const DENSE_DTYPES: readonly string[] = ['f32', 'f16', 'bf16'];

/** A matrix (f32 or 16-bit) as ggml blocks of `type`, quantized row by row as ggml does, packed
 *  for the kernels (q8_0_packed / q4_0_packed). */
function toBlocks(weight: Weight, type: BlockType): Weight {
  const values =
    weight.dtype === 'f32'
      ? (weight.data as Float32Array)
      : Float32Array.from(
          decodeValues(
            new Uint8Array(weight.data.buffer, weight.data.byteOffset, weight.data.byteLength),
            weight.dtype === 'bf16' ? 'BF16' : 'F16',
          ),
        );
  const blocks = quantize(type === 'q8_0' ? 'Q8_0' : 'Q4_0', values);
  const packed = packQuantizedWeight({ type, rows: weight.rows, cols: weight.cols, data: blocks });
  return {
    dtype: type === 'q8_0' ? 'q8_0_packed' : 'q4_0_packed',
    rows: weight.rows,
    cols: weight.cols,
    data: packed.data,
  };
}

/**
 * Re-encodes the matrices whose checkpoint tensors are stored as Q8_0 / Q4_0 blocks (GGUF) in
 * those blocks, so the int8 kernels multiply them. Slices arrive dequantized (exact f32 values of
 * the blocks); ggml's quantizer gives a block back bit for bit from its own dequantized values
 * (the largest element maps to the extreme code, so the scale and every code come out the same),
 * so this recovers the file's blocks. A matrix whose slice would cut a block (a TP column slice
 * of o_proj / down_proj not on a multiple of 32) is never re-quantized: it stays f32, exactly the
 * file's values, on the f32 kernels. So is a fused matrix (q|k|v, gate|up) whose parts differ in
 * type.
 */
export function encodeStoredBlockMatrices(weights: ModelWeights, checkpoint: Checkpoint): ModelWeights {
  const typeOf = (slices: Array<TensorSlice | undefined>): BlockType | null => {
    const cutsBlock = (s: TensorSlice) => s.axis === 'columns' && (s.start % 32 !== 0 || s.end % 32 !== 0);
    const types = slices.map((s) =>
      s === undefined || cutsBlock(s) ? null : checkpoint.storedBlockType(s.name),
    );
    return types.every((t) => t !== null && t === types[0]) ? types[0] : null;
  };
  let numBytes = weights.numBytes;
  const encode = (weight: Weight, type: BlockType | null): Weight => {
    if (type === null || weight.cols % 32 !== 0 || !DENSE_DTYPES.includes(weight.dtype)) return weight;
    const encoded = toBlocks(weight, type);
    numBytes += encoded.data.byteLength - weight.data.byteLength;
    return encoded;
  };
  const layers = weights.layers.map((layer, i) => {
    const slices = weights.shard.layerSlices[i];
    return {
      ...layer,
      qkv: encode(layer.qkv, typeOf([slices.q, slices.k, slices.v])),
      o: encode(layer.o, typeOf([slices.o])),
      gateUp: encode(layer.gateUp, typeOf([slices.gate, slices.up])),
      down: encode(layer.down, typeOf([slices.down])),
    };
  });
  // The embedding table stays as read (embedding lookups need rows of values); a tied lm_head
  // that is the embedding table itself stays with it.
  const { lmHead, embedding } = weights;
  const head =
    lmHead === undefined || lmHead === embedding ? lmHead : encode(lmHead, typeOf([weights.shard.lmHead]));
  return { ...weights, layers, lmHead: head, numBytes };
}
