// The decode GEMV kernel (gemvSource) against matmulSource, bit for bit, and against the float64
// reference. The bits are the contract: matmul may pick either kernel for the same rows, and TP
// ranks reproduce the single device's bits only if every kernel makes the same fma chains.
import { reference, type WeightDType, weightToFloat64 } from '@seesaw/kernels';
import { afterAll, describe, expect, it } from 'vitest';
import { GEMV_MAX_ROWS, WebGpuKernels } from './webgpu-kernels.ts';
import type { GpuTensor } from './webgpu-stream.ts';
import {
  f64,
  GPU_TOLERANCE,
  gpuForTests,
  makeRng,
  randomF32,
  randomWeight,
  relativeError,
  testSeed,
} from './webgpu-test-support.ts';

const gpu = await gpuForTests();
const rng = makeRng(testSeed());
const randomInt = (lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
// Every rows-per-workgroup variant (1, 2, 4, 8, 16) full and part-filled, and two row blocks;
// f32 and f16 (whose code differs from bf16's only in the weight loads) a subset of them.
const ROW_COUNTS = [1, 2, 3, 4, 6, 8, 11, GEMV_MAX_ROWS, GEMV_MAX_ROWS + 1, GEMV_MAX_ROWS + 2];
const FEWER_ROW_COUNTS = [1, 3, 11, GEMV_MAX_ROWS + 1];
const MAX_ROWS_TESTED = GEMV_MAX_ROWS + 2;

describe.skipIf(gpu === null)('WebGPU decode GEMV', () => {
  const k = gpu ? new WebGpuKernels(gpu.device) : (null as unknown as WebGpuKernels);
  afterAll(() => gpu?.device.destroy());

  it('matmul picks the GEMV up to GEMV_MAX_ROWS rows on a hardware adapter, never on a software one', () => {
    expect(k.autoKernel(1)).toBe('gemv');
    expect(k.autoKernel(GEMV_MAX_ROWS)).toBe('gemv');
    expect(k.autoKernel(GEMV_MAX_ROWS + 1)).toBe('tiled');
    const software = WebGpuKernels.forContext({ device: gpu!.device, isSoftwareAdapter: true });
    expect(software.autoKernel(1)).toBe('rows');
    expect(software.autoKernel(512)).toBe('rows');
  });

  // Each (dtype, rows per workgroup, bias) is a shader variant, about a second of lavapipe's JIT:
  // bf16 (the model weights' dtype) runs every variant, f32 and f16 FEWER_ROW_COUNTS with the
  // bias alternating. Every dtype runs every leaves value, odd leaf lengths (element loads), even ones
  // (word loads) over several staged chunks and short ones under a chunk, output counts that are
  // no multiple of a workgroup's, and 1 row to past GEMV_MAX_ROWS (two row blocks).
  for (const dtype of ['bf16', 'f32', 'f16'] as WeightDType[]) {
    it(`gives matmulSource's bits with ${dtype} weights (leaves 1-8, odd and even leaf lengths, ragged outputs, 1 row to past ${GEMV_MAX_ROWS}, bias and none)`, async () => {
      const shapes = [1, 2, 4, 8].flatMap((leaves) =>
        [2 * randomInt(0, 20) + 1, 2 * randomInt(17, 40), randomInt(1, 9)].map((leafLen) => ({
          leaves,
          leafLen,
        })),
      );
      for (const [index, { leaves, leafLen }] of shapes.entries()) {
        const n = 2 * randomInt(1, 40) + 1;
        const kk = leaves * leafLen;
        const hostWeight = { ...randomWeight(rng, dtype, n, kk), leaves };
        const w = k.uploadWeight(hostWeight);
        const weight64 = weightToFloat64(hostWeight);
        const biasData = randomF32(rng, n);
        const bias = k.upload(biasData);
        const xData = randomF32(rng, MAX_ROWS_TESTED * kk, 2);
        const x = k.upload(xData);
        const cases: Array<{ m: number; withBias: boolean; gemv: GpuTensor; rows: GpuTensor }> = [];
        for (const m of dtype === 'bf16' ? ROW_COUNTS : FEWER_ROW_COUNTS) {
          for (const withBias of dtype === 'bf16' ? [false, true] : [(m + index) % 2 === 0]) {
            const [gemv, rows] = [k.allocate(m * n), k.allocate(m * n)];
            k.matmul(gemv, x, m, w, withBias ? bias : undefined, 'gemv');
            k.matmul(rows, x, m, w, withBias ? bias : undefined, 'rows');
            cases.push({ m, withBias, gemv, rows });
          }
        }
        for (const { m, withBias, gemv, rows } of cases) {
          const [got, want] = [await k.read(gemv), await k.read(rows)];
          const where = `${dtype} ${m}x${n}x${kk}, ${leaves} leaves${withBias ? ', bias' : ''}`;
          expect(new Uint32Array(got.buffer), where).toEqual(new Uint32Array(want.buffer));
          const xRows = f64(xData.subarray(0, m * kk));
          const ref = reference.matmul(xRows, m, weight64, n, kk, withBias ? f64(biasData) : undefined);
          expect(relativeError(got, ref), where).toBeLessThan(GPU_TOLERANCE);
          gemv.buffer.destroy();
          rows.buffer.destroy();
        }
      }
    }, 120_000);
  }
});
