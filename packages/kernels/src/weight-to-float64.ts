import type { Weight } from './index.ts';
import { unpackQuantizedWeight } from './quantized.ts';
import { bf16ToNumber, f16ToNumber } from './reference/half-precision.ts';
import { dequantizeBlocks } from './reference/quantized.ts';

/** The weight's values as float64, [rows][cols] row-major (for tests and references). */
export function weightToFloat64(w: Weight): Float64Array {
  if (w.dtype === 'q8_0' || w.dtype === 'q4_0')
    return dequantizeBlocks(w.dtype, w.data as Uint8Array, w.rows, w.cols);
  if (w.dtype === 'q8_0_packed' || w.dtype === 'q4_0_packed') {
    const type = w.dtype === 'q8_0_packed' ? 'q8_0' : 'q4_0';
    const blocks = unpackQuantizedWeight({ type, rows: w.rows, cols: w.cols, data: w.data as Uint8Array });
    return dequantizeBlocks(type, blocks.data, w.rows, w.cols);
  }
  const out = new Float64Array(w.rows * w.cols);
  if (w.data.length !== out.length) throw new RangeError('weight data length does not match rows*cols');
  if (w.dtype === 'f32') {
    out.set(w.data);
    return out;
  }
  const decode = w.dtype === 'bf16' ? bf16ToNumber : w.dtype === 'f16' ? f16ToNumber : undefined;
  if (!decode) throw new TypeError(`unknown weight dtype ${String(w.dtype)}`);
  for (let i = 0; i < out.length; i++) out[i] = decode(w.data[i]);
  return out;
}
