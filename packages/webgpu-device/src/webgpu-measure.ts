/**
 * What the WebGPU backend's kernels reach on the adapter they run on: an FMA-loop peak (GFLOP/s)
 * and a buffer-copy bandwidth (GB/s), then the matmul kernel at 512 rows (a prefill step) and the
 * decode GEMV (1 row, bf16 weights), to be read as fractions of those two; each next to the
 * kernels matmul does not pick there (same bits), so a run shows their ratio. Used by
 * `pnpm bench:webgpu` and `seesaw profile --backend webgpu`.
 */
import type { GpuContext } from './gpu-context.ts';
import { WebGpuKernels } from './webgpu-kernels.ts';
import type { GpuTensor } from './webgpu-stream.ts';

export interface WebGpuMeasurements {
  adapter: string;
  fmaPeakGflops: number;
  copyGBps: number;
  /** [rows, output columns, input columns] of the timed matmul. */
  matmulShape: [number, number, number];
  /** The kernel matmul picks at that size (tiled). */
  matmulGflops: number;
  /** Both kernels at the same size (same bits): the tiled one and the one-thread-per-output one. */
  matmulTiledKernelGflops: number;
  matmulRowsKernelGflops: number;
  gemvShape: [number, number];
  /** Weight bytes streamed per second by the kernel matmul picks for one row. */
  gemvGBps: number;
  /** The same for the GEMV kernel and the one-thread-per-output one (same bits). */
  gemvKernelGBps: number;
  gemvRowsKernelGBps: number;
  /** The GEMV kernel at gemvBatchRows rows: weight bytes per second (read once for all rows). */
  gemvBatchRows: number;
  gemvKernelBatchGBps: number;
  gemvRowsKernelBatchGBps: number;
}

/** Measures on context's device; reduced: small sizes for a software adapter (lavapipe). */
export async function measureWebGpuKernels(
  context: GpuContext,
  reduced: boolean,
): Promise<WebGpuMeasurements> {
  const { device, adapterDescription } = context;
  const kernels = WebGpuKernels.forContext(context);
  const tensors: GpuTensor[] = [];
  const keep = (t: GpuTensor) => {
    tensors.push(t);
    return t;
  };
  /** Median seconds of runs of work(), each submitted and waited for, after one warm-up. */
  async function timeIt(work: () => void, runs = 5): Promise<number> {
    const times: number[] = [];
    for (let i = 0; i <= runs; i++) {
      const start = performance.now();
      work();
      kernels.flush();
      await device.queue.onSubmittedWorkDone();
      if (i > 0) times.push((performance.now() - start) / 1000);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)];
  }

  // FMA peak: each thread runs 8 independent vec4 FMA chains (enough to hide FMA latency).
  const FMA_ITERATIONS = reduced ? 256 : 4096;
  const FMA_THREADS = reduced ? 64 * 256 : 64 * 16384;
  const fmaModule = device.createShaderModule({
    code: `@group(0) @binding(0) var<storage, read_write> out: array<f32>;
  @compute @workgroup_size(64)
  fn main(@builtin(global_invocation_id) gid: vec3u) {
    var a: array<vec4f, 8>;
    for (var c = 0u; c < 8u; c++) { a[c] = vec4f(f32(gid.x + c) * 1e-9); }
    let m = vec4f(0.999999);
    let b = vec4f(1e-7);
    for (var i = 0u; i < ${FMA_ITERATIONS}u; i++) {
      a[0] = fma(a[0], m, b); a[1] = fma(a[1], m, b); a[2] = fma(a[2], m, b); a[3] = fma(a[3], m, b);
      a[4] = fma(a[4], m, b); a[5] = fma(a[5], m, b); a[6] = fma(a[6], m, b); a[7] = fma(a[7], m, b);
    }
    var s = vec4f(0.0);
    for (var c = 0u; c < 8u; c++) { s += a[c]; }
    out[gid.x] = s.x + s.y + s.z + s.w;
  }`,
  });
  const fmaPipeline = device.createComputePipeline({
    layout: 'auto',
    compute: { module: fmaModule, entryPoint: 'main' },
  });
  const fmaOut = kernels.allocate(FMA_THREADS);
  const fmaBind = device.createBindGroup({
    layout: fmaPipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: fmaOut.buffer } }],
  });
  const fmaSeconds = await timeIt(() => {
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(fmaPipeline);
    pass.setBindGroup(0, fmaBind);
    pass.dispatchWorkgroups(FMA_THREADS / 64);
    pass.end();
    device.queue.submit([encoder.finish()]);
  });
  const peakGflops = (FMA_THREADS * FMA_ITERATIONS * 8 * 4 * 2) / fmaSeconds / 1e9;

  // Copy bandwidth: bytes read plus bytes written by a buffer-to-buffer copy.
  const COPY_FLOATS = reduced ? 4 << 20 : 64 << 20;
  const copySrc = keep(kernels.allocate(COPY_FLOATS));
  const copyDst = keep(kernels.allocate(COPY_FLOATS));
  const copySeconds = await timeIt(() => kernels.copy(copyDst, 0, copySrc, 0, COPY_FLOATS));
  const copyGBps = (2 * COPY_FLOATS * 4) / copySeconds / 1e9;

  function randomTensor(length: number): GpuTensor {
    return keep(kernels.upload(Float32Array.from({ length }, () => Math.random() - 0.5)));
  }
  function bf16Weight(rows: number, cols: number) {
    const data = new Uint16Array(rows * cols);
    for (let i = 0; i < data.length; i++) data[i] = 0x3c00 + (i % 256); // small finite bf16 values
    return kernels.uploadWeight({ dtype: 'bf16', rows, cols, data });
  }

  // Matmul at 512 rows (a prefill step), bf16 weights.
  const [M, N, K] = reduced ? [512, 256, 256] : [512, 4096, 4096];
  const mmW = bf16Weight(N, K);
  const mmX = randomTensor(M * K);
  const mmOut = keep(kernels.allocate(M * N));
  const mmSeconds = await timeIt(() => kernels.matmul(mmOut, mmX, M, mmW), 3);
  const mmGflops = (2 * M * N * K) / mmSeconds / 1e9;
  const gflopsOf = async (kernel: 'rows' | 'tiled') =>
    (2 * M * N * K) / (await timeIt(() => kernels.matmul(mmOut, mmX, M, mmW, undefined, kernel), 3)) / 1e9;
  const mmTiledGflops = await gflopsOf('tiled');
  const mmRowsGflops = await gflopsOf('rows');

  // Decode GEMV: one row (and a batch of 8) against bf16 weights; bytes are the weights read once.
  const [GN, GK] = reduced ? [1024, 1024] : [8192, 4096];
  const GEMV_BATCH = 8;
  const gvW = bf16Weight(GN, GK);
  const gvX = randomTensor(GEMV_BATCH * GK);
  const gvOut = keep(kernels.allocate(GEMV_BATCH * GN));
  const gemvGBpsOf = async (rows: number, kernel: 'auto' | 'gemv' | 'rows') =>
    (GN * GK * 2) / (await timeIt(() => kernels.matmul(gvOut, gvX, rows, gvW, undefined, kernel))) / 1e9;
  const gemvGBps = await gemvGBpsOf(1, 'auto');
  const gemvKernelGBps = await gemvGBpsOf(1, 'gemv');
  const gemvRowsKernelGBps = await gemvGBpsOf(1, 'rows');
  const gemvKernelBatchGBps = await gemvGBpsOf(GEMV_BATCH, 'gemv');
  const gemvRowsKernelBatchGBps = await gemvGBpsOf(GEMV_BATCH, 'rows');
  for (const t of tensors) t.buffer.destroy();
  fmaOut.buffer.destroy();
  return {
    adapter: adapterDescription,
    fmaPeakGflops: peakGflops,
    copyGBps,
    matmulShape: [M, N, K],
    matmulGflops: mmGflops,
    matmulTiledKernelGflops: mmTiledGflops,
    matmulRowsKernelGflops: mmRowsGflops,
    gemvShape: [GN, GK],
    gemvGBps,
    gemvKernelGBps,
    gemvRowsKernelGBps,
    gemvBatchRows: GEMV_BATCH,
    gemvKernelBatchGBps,
    gemvRowsKernelBatchGBps,
  };
}
