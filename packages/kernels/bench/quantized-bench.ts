// Quantized-weight matmul (Q8_0, Q4_0) per CPU path, against the ceilings kernels-bench
// measures: GFLOP-equivalent/s (2·m·n·k per second) for many rows, weight GB/s for decode.
// Weights in the packed layout the devices hold (packQuantizedWeight); GB/s counts the ggml
// bytes (34 / 18 per 32 weights), the size the file and a llama.cpp run stream.
import {
  type PackedQuantizedWeight,
  packedQuantizedMatmul,
  packQuantizedWeight,
  QUANT_BLOCK_BYTES,
  type QuantWeightType,
  quantKernelPaths,
  reference,
  setNumThreads,
} from '../src/index.ts';

export interface Ceilings {
  /** GFLOP/s of f32 FMA per thread count. */
  fmaPeak: Map<number, number>;
  /** Streaming read GB/s per thread count. */
  readBw: Map<number, number>;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function timeIt(fn: () => void, reps: number): number {
  fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    fn();
    times.push((performance.now() - t) / 1000);
  }
  return median(times);
}

function quantWeight(type: QuantWeightType, rows: number, cols: number, seed: number): PackedQuantizedWeight {
  const blockBytes = QUANT_BLOCK_BYTES[type];
  const data = new Uint8Array((rows * cols * blockBytes) / 32);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    data[i] = s >>> 24;
  }
  const scale = reference.numberToF16(0.01);
  for (let at = 0; at < data.length; at += blockBytes) {
    data[at] = scale & 0xff;
    data[at + 1] = scale >> 8;
  }
  return packQuantizedWeight({ type, rows, cols, data });
}

function activations(n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.sin(i * 0.37) * 0.5;
  return x;
}

const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(0)}%`;

export function benchQuantized(ceilings: Ceilings, threadCounts: number[]): void {
  const { supported, chosen } = quantKernelPaths();
  console.log(`quantized kernels: CPU paths ${supported.join(', ')}; default ${chosen}`);
  const [n, k] = [4096, 4096];
  for (const type of ['q8_0', 'q4_0'] as const) {
    const bytes = (n * k * QUANT_BLOCK_BYTES[type]) / 32;
    const copies = Math.max(2, Math.ceil((256 * 1024 * 1024) / bytes));
    const weights = Array.from({ length: copies }, (_, i) => quantWeight(type, n, k, 20 + i));
    for (const path of supported) {
      for (const t of threadCounts) {
        setNumThreads(t);
        const m = path === 'scalar' ? 16 : 128;
        const x = activations(m * k);
        const out = new Float32Array(m * n);
        const s = timeIt(() => packedQuantizedMatmul(out, x, m, weights[0], path), 3);
        const gflops = (2 * m * n * k) / s / 1e9;
        console.log(
          `quant matmul ${m}x${k}x${n} ${type} ${path.padEnd(10)} ${t}T: ${(s * 1e3).toFixed(1)} ms, ` +
            `${gflops.toFixed(1)} GFLOP-eq/s = ${pct(gflops, ceilings.fmaPeak.get(t)!)} of ${t}T f32 FMA peak`,
        );
        for (const rows of path === 'scalar' ? [1] : [1, 32]) {
          const xs = activations(rows * k);
          const outs = new Float32Array(rows * n);
          let next = 0;
          const sd = timeIt(
            () => packedQuantizedMatmul(outs, xs, rows, weights[next++ % copies], path),
            2 * copies,
          );
          const gbs = bytes / sd / 1e9;
          console.log(
            `quant decode m=${String(rows).padStart(2)} ${n}x${k} ${type} ${path.padEnd(10)} ${t}T: ` +
              `${(sd * 1e3).toFixed(2)} ms, weights ${gbs.toFixed(1)} GB/s = ${pct(gbs, ceilings.readBw.get(t)!)} ` +
              `of read bw, ${((2 * rows * n * k) / sd / 1e9).toFixed(1)} GFLOP-eq/s`,
          );
        }
      }
    }
  }
  setNumThreads(1);
}
