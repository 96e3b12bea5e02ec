// Float64 reference for quantized weights: decode each ggml block to its values (spec:
// ggml-common.h block_q8_0 / block_q4_0), then the plain float64 matmul on them.
import { f16ToNumber } from './half-precision.ts';

export function dequantizeBlocks(
  type: 'q8_0' | 'q4_0',
  data: Uint8Array,
  rows: number,
  cols: number,
): Float64Array {
  const out = new Float64Array(rows * cols);
  const blockBytes = type === 'q8_0' ? 34 : 18;
  for (let blockIndex = 0; blockIndex < (rows * cols) / 32; blockIndex++) {
    const at = blockIndex * blockBytes;
    const scale = f16ToNumber(data[at] | (data[at + 1] << 8));
    for (let i = 0; i < 32; i++) {
      let q: number;
      if (type === 'q8_0') q = (data[at + 2 + i] << 24) >> 24;
      else q = (i < 16 ? data[at + 2 + i] & 15 : data[at + 2 + i - 16] >> 4) - 8;
      out[blockIndex * 32 + i] = q * scale;
    }
  }
  return out;
}
