import { describe, expect, it } from 'vitest';
import {
  addInPlace,
  argmaxRows,
  embed,
  f32ToBf16,
  matmul,
  pagedAttention,
  rmsNorm,
  rope,
  sampleRow,
  setNumThreads,
  siluMul,
  type Weight,
  writeKv,
} from './index.ts';

const f32 = (n: number) => new Float32Array(n);
const w34: Weight = { dtype: 'f32', rows: 3, cols: 4, data: f32(12) };

describe('argument validation', () => {
  it('matmul', () => {
    expect(() => matmul(f32(6), f32(7), 2, w34)).toThrow(RangeError); // x too short for m*K = 8
    expect(() => matmul(f32(5), f32(8), 2, w34)).toThrow(/out too short/);
    expect(() => matmul(f32(6), f32(8), 2, { ...w34, data: f32(11) })).toThrow(/does not match rows\*cols/);
    expect(() => matmul(f32(6), f32(8), 2, { ...w34, dtype: 'bf16' })).toThrow(TypeError); // f32 data as bf16
    expect(() => matmul(f32(6), f32(8), 2, { ...w34, dtype: 'int8' as 'f32' })).toThrow(TypeError);
    expect(() => matmul(f32(6), f32(8), 2, w34, f32(2))).toThrow(/bias length/);
    expect(() => matmul(f32(6), f32(8), 1.5, w34)).toThrow(RangeError);
    expect(() => matmul(f32(6), f32(8), -1, w34)).toThrow(RangeError);
    expect(() => matmul(f32(6), new Float64Array(8) as unknown as Float32Array, 2, w34)).toThrow(
      /Float32Array/,
    );
    expect(() =>
      matmul(f32(6), f32(8), 2, { dtype: 'f16', rows: 3, cols: 4, data: new Uint16Array(12) }),
    ).not.toThrow();
  });

  it('row-wise ops', () => {
    expect(() => rmsNorm(f32(8), f32(9), f32(4), 1e-5)).toThrow(/not a multiple/);
    expect(() => rmsNorm(f32(7), f32(8), f32(4), 1e-5)).toThrow(/out too short/);
    expect(() => rmsNorm(f32(8), f32(8), f32(0), 1e-5)).toThrow(RangeError);
    expect(() => addInPlace(f32(3), f32(4))).toThrow(/lengths differ/);
    expect(() => rope(f32(64), 2, 1, 32, 32, f32(31), f32(32))).toThrow(/cos too short/);
    expect(() => rope(f32(63), 2, 1, 32, 32, f32(32), f32(32))).toThrow(/x too short/);
    expect(() => rope(f32(64), 2, 2, 32, 32, f32(32), f32(32))).toThrow(/rowStride/);
    expect(() => rope(f32(64), 2, 1, 31, 32, f32(32), f32(32))).toThrow(/even/);
    expect(() => siluMul(f32(8), f32(15), 2, 4)).toThrow(/gateUp too short/);
    expect(() => embed(f32(8), w34, Int32Array.of(0, 3))).toThrow(/token id 3/);
    expect(() => embed(f32(8), w34, Int32Array.of(-1, 0))).toThrow(RangeError);
    expect(() => embed(f32(7), w34, Int32Array.of(0, 1))).toThrow(/out too short/);
    expect(() => f32ToBf16(f32(3), new Uint16Array(2))).toThrow(RangeError);
  });

  it('KV cache and attention', () => {
    const layout = { numKvHeads: 2, headDim: 4, blockSize: 2 };
    const cache = f32(3 * 2 * 2 * 4); // 3 blocks
    expect(() => writeKv(cache, cache, f32(8), f32(8), 8, Int32Array.of(6), layout)).toThrow(/slot 6/);
    expect(() => writeKv(cache, cache, f32(8), f32(8), 8, Int32Array.of(-1), layout)).toThrow(/slot -1/);
    expect(() => writeKv(cache, cache, f32(15), f32(16), 8, Int32Array.of(0, 1), layout)).toThrow(
      /k too short/,
    );
    expect(() => writeKv(cache, f32(40), f32(8), f32(8), 8, Int32Array.of(0), layout)).toThrow(/differ/);
    expect(() => writeKv(f32(20), f32(20), f32(8), f32(8), 8, Int32Array.of(0), layout)).toThrow(
      /not a multiple/,
    );

    const batch = (contextLens: number[], queryStart: number[], table: number[], maxBlocksPerSeq = 2) => ({
      contextLens: Int32Array.from(contextLens),
      queryStart: Int32Array.from(queryStart),
      blockTables: Int32Array.from(table),
      maxBlocksPerSeq,
    });
    const run = (b: ReturnType<typeof batch>, numHeads = 4, out = f32(64), q = f32(64)) =>
      pagedAttention(out, q, 16, cache, cache, b, numHeads, layout, 0.5);
    expect(() => run(batch([3], [0, 2], [0, 1]))).not.toThrow();
    expect(() => run(batch([3], [0, 2], [0, 3]))).toThrow(/block id 3/);
    expect(() => run(batch([5], [0, 2], [0, 1]))).toThrow(/needs 3 blocks/);
    expect(() => run(batch([1], [0, 2], [0, 1]))).toThrow(/less than its 2 queries/);
    expect(() => run(batch([3], [0], [0, 1]))).toThrow(/queryStart length/);
    expect(() => run(batch([3, 2], [0, 2, 1], [0, 1, 2, 0]))).toThrow(/non-decreasing/);
    expect(() => run(batch([3], [0, 2], [0]))).toThrow(/blockTables too short/);
    expect(() => run(batch([3], [0, 2], [0, 1]), 3)).toThrow(/multiple of numKvHeads/);
    expect(() => run(batch([3], [0, 2], [0, 1]), 4, f32(31))).toThrow(/out too short/);
    expect(() => run(batch([3], [0, 5], [0, 1, 2]))).toThrow(RangeError);
  });

  it('sampling and threads', () => {
    expect(() => argmaxRows(f32(9), 2, 5)).toThrow(/logits too short/);
    expect(() => sampleRow(f32(0), 1, 0, 1, 0.5)).toThrow(/empty/);
    expect(() => sampleRow(f32(4), 0, 0, 1, 0.5)).toThrow(/temperature/);
    expect(() => sampleRow(f32(4), 1, 0, 1, 1)).toThrow(/uniform/);
    expect(() => sampleRow(f32(4), 1, 1.5, 1, 0.5)).toThrow(/topK/);
    expect(() => sampleRow(f32(4), 1, 0, Number.NaN, 0.5)).toThrow(/topP/);
    expect(() => setNumThreads(0)).toThrow(RangeError);
    expect(() => setNumThreads(1000)).toThrow(RangeError);
  });
});
