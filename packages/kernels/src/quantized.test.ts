import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeRng, randomF32, testSeed } from '../test/test-support.ts';
import {
  packedQuantizedMatmul,
  packQuantizedWeight,
  QUANT_BLOCK_BYTES,
  type QuantizedWeight,
  type QuantWeightType,
  quantizedMatmul,
  quantKernelPaths,
  reference,
  setNumThreads,
  unpackQuantizedWeight,
  weightToFloat64,
} from './index.ts';

const rng = makeRng(testSeed());
const f = Math.fround;
const { supported, chosen } = quantKernelPaths();
console.log(`quantized kernels: supported ${supported.join(', ')}; chosen ${chosen}`);

afterEach(() => setNumThreads(1));

/** Random ggml blocks: f16 scales of mixed magnitude, every code value possible. */
function randomQuantWeight(type: QuantWeightType, rows: number, cols: number): QuantizedWeight {
  const blockBytes = QUANT_BLOCK_BYTES[type];
  const data = new Uint8Array((rows * cols * blockBytes) / 32);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(rng() * 256);
  for (let at = 0; at < data.length; at += blockBytes) {
    const scale = reference.numberToF16((rng() * 2 - 1) * 10 ** (-1 - 3 * rng()));
    data[at] = scale & 0xff;
    data[at + 1] = scale >> 8;
    // Q8_0 codes are in [-127, 127] (ggml never writes -128).
    if (type === 'q8_0') for (let i = 2; i < 34; i++) if (data[at + i] === 0x80) data[at + i] = 0x81;
  }
  return { type, rows, cols, data };
}

/**
 * The reduction contract written out in TypeScript: activations per 32-block d = amax/127,
 * q = roundf(x / d); per block p = f32(f32(d_w * d_x) * isum); outputs = halving tree over p.
 */
function contractMatmul(x: Float32Array, m: number, w: QuantizedWeight): Float32Array {
  const k = w.cols;
  const nb = k / 32;
  const wValues = reference.dequantizeBlocks(w.type, w.data, w.rows, k);
  const out = new Float32Array(m * w.rows);
  const blockBytes = QUANT_BLOCK_BYTES[w.type];
  for (let r = 0; r < m; r++) {
    const codes = new Int32Array(k);
    const dx = new Float32Array(nb);
    for (let b = 0; b < nb; b++) {
      let amax = 0;
      for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[r * k + b * 32 + i]));
      dx[b] = f(amax / 127);
      const id = dx[b] !== 0 ? f(1 / dx[b]) : 0;
      for (let i = 0; i < 32; i++) {
        const v = f(x[r * k + b * 32 + i] * id);
        codes[b * 32 + i] = v < 0 ? -Math.round(-v) : Math.round(v);
      }
    }
    for (let n = 0; n < w.rows; n++) {
      const p = new Float32Array(nb);
      for (let b = 0; b < nb; b++) {
        const at = (n * nb + b) * blockBytes;
        const dw = reference.f16ToNumber(w.data[at] | (w.data[at + 1] << 8));
        let isum = 0;
        // Integer codes of the weight: its values divided by its scale.
        for (let i = 0; i < 32; i++)
          isum += Math.round(wValues[n * k + b * 32 + i] / (dw || 1)) * codes[b * 32 + i];
        p[b] = f(f(dw * dx[b]) * isum);
      }
      const tree = (lo: number, hi: number): number =>
        hi - lo === 1
          ? p[lo]
          : f(tree(lo, lo + Math.floor((hi - lo) / 2)) + tree(lo + Math.floor((hi - lo) / 2), hi));
      out[r * w.rows + n] = tree(0, nb);
    }
  }
  return out;
}

function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++)
    if (!Object.is(a[i], b[i])) throw new Error(`${what}: element ${i} ${a[i]} != ${b[i]}`);
}

describe('quantizedMatmul', () => {
  for (const type of ['q8_0', 'q4_0'] as const) {
    // 13 blocks: an odd count for the tree; 70: more than one run of partials (32 blocks) in the
    // AVX-512 kernel. 37 outputs: a partial 16-row tile; 5 and 70 rows: a partial 4-row block,
    // and more rows than one work item holds.
    for (const [blocks, rowCounts] of [
      [13, [1, 3, 5, 8, 70]],
      [70, [1, 5]],
    ] as const) {
      it(`${type}, ${blocks} blocks: every CPU path gives the contract's bits, for any row count and thread count`, () => {
        const n = 37;
        const k = 32 * blocks;
        const w = randomQuantWeight(type, n, k);
        const packed = packQuantizedWeight(w);
        expect(Buffer.from(unpackQuantizedWeight(packed).data).equals(Buffer.from(w.data))).toBe(true);
        const packedDtype = type === 'q8_0' ? 'q8_0_packed' : 'q4_0_packed';
        expect(weightToFloat64({ dtype: packedDtype, rows: n, cols: k, data: packed.data })).toEqual(
          reference.dequantizeBlocks(type, w.data, n, k),
        );
        for (const m of rowCounts) {
          const x = randomF32(rng, m * k, 2);
          x[5] = 0; // a zero inside a block, and a whole zero block in the last row
          x.fill(0, (m - 1) * k, (m - 1) * k + 32);
          const expected = contractMatmul(x, m, w);
          for (const path of supported) {
            for (const threads of [1, 2]) {
              setNumThreads(threads);
              const out = new Float32Array(m * n).fill(Number.NaN);
              quantizedMatmul(out, x, m, w, path);
              sameBits(out, expected, `${type} ${path} m=${m} threads=${threads}`);
              const outPacked = new Float32Array(m * n).fill(Number.NaN);
              packedQuantizedMatmul(outPacked, x, m, packed, path);
              sameBits(outPacked, expected, `${type} packed ${path} m=${m} threads=${threads}`);
            }
          }
          if (m > 1) {
            // Row 1 alone gives the same bits as inside the batch.
            const alone = new Float32Array(n);
            quantizedMatmul(alone, x.subarray(k, 2 * k), 1, w);
            sameBits(alone, expected.subarray(n, 2 * n), `${type} row 1 alone`);
          }
        }
      });
    }

    it(`${type}: within the activation-quantization bound of float64 on the dequantized weights`, () => {
      const m = 4;
      const n = 19;
      const k = 32 * 24;
      const w = randomQuantWeight(type, n, k);
      const x = randomF32(rng, m * k);
      const out = new Float32Array(m * n);
      quantizedMatmul(out, x, m, w);
      const w64 = reference.dequantizeBlocks(type, w.data, n, k);
      const ref = reference.matmul(Float64Array.from(x), m, w64, n, k);
      for (let r = 0; r < m; r++) {
        for (let j = 0; j < n; j++) {
          // Each activation moves by at most half its block's step d_x/2; plus f32 rounding.
          let bound = 0;
          let magnitude = 0;
          for (let b = 0; b < k / 32; b++) {
            let amax = 0;
            for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[r * k + b * 32 + i]));
            for (let i = 0; i < 32; i++) {
              bound += (amax / 127 / 2) * Math.abs(w64[j * k + b * 32 + i]);
              magnitude += Math.abs(x[r * k + b * 32 + i] * w64[j * k + b * 32 + i]);
            }
          }
          expect(Math.abs(out[r * n + j] - ref[r * n + j])).toBeLessThanOrEqual(
            bound * 1.001 + magnitude * 1e-6,
          );
        }
      }
    });
  }

  it('rejects short buffers and columns that are not whole blocks', () => {
    const w = randomQuantWeight('q8_0', 2, 64);
    expect(() => quantizedMatmul(new Float32Array(2), new Float32Array(63), 1, w)).toThrow(RangeError);
    expect(() => quantizedMatmul(new Float32Array(1), new Float32Array(64), 1, w)).toThrow(/out/);
    expect(() =>
      quantizedMatmul(new Float32Array(2), new Float32Array(64), 1, { ...w, data: w.data.subarray(1) }),
    ).toThrow(/weight data/);
    expect(() => quantizedMatmul(new Float32Array(2), new Float32Array(48), 1, { ...w, cols: 48 })).toThrow(
      /multiple of 32/,
    );
  });
});

describe('SEESAW_QUANT_KERNEL', () => {
  const addon = join(import.meta.dirname, '../build/Release/seesaw_kernels.node');
  const chosenWith = (value: string) =>
    spawnSync(
      process.execPath,
      ['-e', `console.log(require(${JSON.stringify(addon)}).quantKernelPaths().chosen)`],
      {
        env: { ...process.env, SEESAW_QUANT_KERNEL: value },
        encoding: 'utf8',
      },
    ).stdout.trim();

  it('forces any supported path; an unsupported or unknown one falls back to the fastest', () => {
    for (const path of supported) expect(chosenWith(path)).toBe(path);
    expect(chosenWith('no-such-path')).toBe(supported[supported.length - 1]);
  });
});
