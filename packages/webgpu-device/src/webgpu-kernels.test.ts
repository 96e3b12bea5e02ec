import { sumByHalvingTree } from '@seesaw/gpu-actor';
import { reference, sampleRow, type WeightDType, weightToFloat64 } from '@seesaw/kernels';
import { afterAll, describe, expect, it } from 'vitest';
import { splitTopK, WebGpuKernels } from './webgpu-kernels.ts';
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

describe.skipIf(gpu === null)('WebGPU kernels against the float64 reference', () => {
  const k = gpu ? new WebGpuKernels(gpu.device) : (null as unknown as WebGpuKernels);
  afterAll(() => gpu?.device.destroy());

  for (const dtype of ['f32', 'f16', 'bf16'] as WeightDType[]) {
    it(`matmul with ${dtype} weights (odd K, bias and none)`, async () => {
      for (const [m, n, kk] of [
        [1, 5, 7],
        [9, 130, 257],
      ]) {
        const x = randomF32(rng, m * kk, 2);
        const w = randomWeight(rng, dtype, n, kk);
        const bias = randomF32(rng, n);
        const gw = k.uploadWeight(w);
        const out = k.allocate(m * n);
        k.matmul(out, k.upload(x), m, gw, k.upload(bias));
        const ref = reference.matmul(f64(x), m, weightToFloat64(w), n, kk, f64(bias));
        expect(relativeError(await k.read(out), ref)).toBeLessThan(GPU_TOLERANCE);
        k.matmul(out, k.upload(x), m, gw);
        const refNoBias = reference.matmul(f64(x), m, weightToFloat64(w), n, kk);
        expect(relativeError(await k.read(out), refNoBias)).toBeLessThan(GPU_TOLERANCE);
      }
    });
  }

  it("the tiled matmul gives the one-thread-per-output kernel's bits (every dtype, leaves 1-8, ragged tiles, bias)", async () => {
    for (const dtype of ['f32', 'f16', 'bf16'] as WeightDType[]) {
      for (const [m, n, kk, leaves] of [
        [1, 5, 7, 1],
        [17, 33, 70, 1],
        [40, 70, 256, 8],
        [23, 48, 96, 4],
        [16, 16, 34, 2],
      ]) {
        const x = k.upload(randomF32(rng, m * kk, 2));
        const w = { ...k.uploadWeight(randomWeight(rng, dtype, n, kk)), leaves };
        const bias = k.upload(randomF32(rng, n));
        for (const withBias of [false, true]) {
          const rows = k.allocate(m * n);
          const tiled = k.allocate(m * n);
          k.matmul(rows, x, m, w, withBias ? bias : undefined, 'rows');
          k.matmul(tiled, x, m, w, withBias ? bias : undefined, 'tiled');
          const [a, b] = [await k.read(rows), await k.read(tiled)];
          const where = `${dtype} ${m}x${n}x${kk}, ${leaves} leaves${withBias ? ', bias' : ''}`;
          expect(new Uint32Array(b.buffer), where).toEqual(new Uint32Array(a.buffer));
        }
      }
    }
  });

  it('matmul rows are bit-identical whatever the batch they are in', async () => {
    const [m, n, kk] = [11, 70, 300];
    const x = randomF32(rng, m * kk);
    const w = k.uploadWeight(randomWeight(rng, 'bf16', n, kk));
    const batched = k.allocate(m * n);
    k.matmul(batched, k.upload(x), m, w);
    const all = await k.read(batched);
    for (const row of [0, 6, 10]) {
      const alone = k.allocate(n);
      k.matmul(alone, k.upload(x.slice(row * kk, (row + 1) * kk)), 1, w);
      expect(Array.from(await k.read(alone))).toEqual(Array.from(all.subarray(row * n, (row + 1) * n)));
    }
  });

  it('a row-parallel weight (8 leaves) equals its T = 2, 4, 8 rank slices (8 / T leaves) summed by the halving tree, bit for bit', async () => {
    const [m, n, kk] = [3, 37, 256];
    const x = randomF32(rng, m * kk);
    const w = { ...randomWeight(rng, 'bf16', n, kk), leaves: 8 };
    const full = k.allocate(m * n);
    k.matmul(full, k.upload(x), m, k.uploadWeight(w));
    const expected = Array.from(await k.read(full));
    for (const t of [2, 4, 8]) {
      const kr = kk / t;
      const parts: Float32Array[] = [];
      for (let r = 0; r < t; r++) {
        const xs = new Float32Array(m * kr);
        for (let i = 0; i < m; i++) xs.set(x.subarray(i * kk + r * kr, i * kk + (r + 1) * kr), i * kr);
        const data = new Uint16Array(n * kr);
        for (let j = 0; j < n; j++) data.set(w.data.subarray(j * kk + r * kr, j * kk + (r + 1) * kr), j * kr);
        const part = k.allocate(m * n);
        k.matmul(
          part,
          k.upload(xs),
          m,
          k.uploadWeight({ dtype: 'bf16', rows: n, cols: kr, data, leaves: 8 / t }),
        );
        parts.push(await k.read(part));
      }
      const combined = new Float32Array(m * n);
      sumByHalvingTree(combined, parts);
      expect(Array.from(combined), `T${t}`).toEqual(expected);
    }
  });

  it('rmsNorm, addInPlace and siluMul', async () => {
    const [rows, cols] = [5, 300];
    const x = randomF32(rng, rows * cols, 3);
    const weight = randomF32(rng, cols);
    const out = k.allocate(rows * cols);
    k.rmsNorm(out, k.upload(x), k.upload(weight), rows, 1e-5);
    expect(relativeError(await k.read(out), reference.rmsNorm(f64(x), f64(weight), 1e-5))).toBeLessThan(
      GPU_TOLERANCE,
    );

    const y = randomF32(rng, rows * cols);
    const gx = k.upload(x);
    k.addInPlace(gx, k.upload(y));
    expect(relativeError(await k.read(gx), reference.add(f64(x), f64(y)))).toBeLessThan(GPU_TOLERANCE);

    const inter = 150;
    const gateUp = randomF32(rng, rows * 2 * inter, 4);
    const act = k.allocate(rows * inter);
    k.siluMul(act, k.upload(gateUp), rows, inter);
    expect(relativeError(await k.read(act), reference.siluMul(f64(gateUp), rows, inter))).toBeLessThan(
      GPU_TOLERANCE,
    );
  });

  it('embedding gather from a bf16 table and RoPE over a strided qkv row', async () => {
    const [vocab, hidden] = [50, 96];
    const table = randomWeight(rng, 'bf16', vocab, hidden);
    const ids = Int32Array.from([3, 49, 0, 3]);
    const out = k.allocate(ids.length * hidden);
    k.embed(out, k.uploadWeight(table), k.upload(ids));
    expect(
      relativeError(await k.read(out), reference.embed(weightToFloat64(table), hidden, ids)),
    ).toBeLessThan(GPU_TOLERANCE);

    const [tokens, heads, headDim, stride] = [3, 4, 16, 4 * 16 + 20];
    const x = randomF32(rng, tokens * stride);
    const cos = randomF32(rng, (tokens * headDim) / 2);
    const sin = randomF32(rng, (tokens * headDim) / 2);
    const gx = k.upload(x);
    k.rope(gx, tokens, heads, headDim, stride, k.upload(cos), k.upload(sin));
    const ref = reference.rope(f64(x), tokens, heads, headDim, stride, f64(cos), f64(sin));
    expect(relativeError(await k.read(gx), ref)).toBeLessThan(GPU_TOLERANCE);
  });

  it('turns a submission WebGPU rejects into an error at the next read', async () => {
    const x = k.allocate(4);
    // Past the end of the 4-float buffer: our checks pass (the tensor claims 64), WebGPU's do not.
    const liar = { buffer: x.buffer, length: 64 };
    k.copy(k.allocate(64), 0, liar, 0, 64);
    await expect(k.read(x)).rejects.toThrow(/WebGPU rejected a submission/);
    expect(await k.read(x)).toEqual(new Float32Array(4));
  });

  it('argmaxRows on the GPU: the float64 reference argmax, lowest index on ties', async () => {
    const [rows, n] = [5, 1000];
    const logits = randomF32(rng, rows * n, 10);
    logits[2 * n + 17] = 50;
    logits[2 * n + 900] = 50; // a tie: the lower index wins
    const ids = k.upload(new Int32Array(rows));
    k.argmaxRows(ids, k.upload(logits), rows, n);
    const expected = Array.from(reference.argmaxRows(logits, rows, n));
    expect(expected[2]).toBe(17);
    expect(Array.from(await k.readInt32(ids))).toEqual(expected);
  });

  it("topKRows: the k best of each row in the sampler order (ties by lower index, NaN last), and the draw over them is the full row's", async () => {
    const [rows, n, topK] = [4, 700, 37];
    const logits = randomF32(rng, rows * n, 4);
    logits[5] = 9; // a tie at the top of row 0: the lower index first
    logits[300] = 9;
    logits[n + 3] = Number.NaN; // NaN ranks as -inf
    for (let i = 0; i < n; i++) if (i % 3 === 0) logits[2 * n + i] = 1.5; // many ties in row 2
    const out = k.allocate(rows * 2 * topK);
    k.topKRows(out, k.upload(logits), rows, n, topK);
    const read = await k.read(out);
    for (let r = 0; r < rows; r++) {
      const row = logits.subarray(r * n, (r + 1) * n);
      const rank = (i: number) => (Number.isNaN(row[i]) ? -Infinity : row[i]);
      const expected = Array.from({ length: n }, (_, i) => i)
        .sort((a, b) => rank(b) - rank(a) || a - b)
        .slice(0, topK);
      const { values, ids } = splitTopK(read, r, topK);
      expect(Array.from(ids)).toEqual(expected);
      expect(Array.from(values)).toEqual(expected.map(rank));
      // The CPU sampler's draw over the candidates picks the token it picks over the whole row.
      for (const [temperature, topP] of [
        [0.7, 1],
        [1.3, 0.8],
        [0.2, 0.3],
      ]) {
        const uniform = rng();
        const full = sampleRow(row.slice(), temperature, topK, topP, uniform);
        const candidate = sampleRow(values.slice(), temperature, topK, topP, uniform);
        expect(ids[candidate]).toBe(full);
      }
    }
  });

  it('rejects shapes that do not fit the buffers, naming them', () => {
    const w = k.uploadWeight(randomWeight(rng, 'f32', 4, 8));
    expect(() => k.matmul(k.allocate(8), k.allocate(16), 3, w)).toThrow(
      /matmul x holds 16 floats, needs 3 x 8/,
    );
    const same = k.allocate(8);
    expect(() => k.rmsNorm(same, same, k.allocate(8), 1, 1e-5)).toThrow(/cannot write in place/);
    expect(() => k.uploadWeight({ dtype: 'bf16', rows: 2, cols: 2, data: new Float32Array(4) })).toThrow(
      /dtype bf16 does not match/,
    );
  });
});
