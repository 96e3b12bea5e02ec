// WebGPU kernel bench: measures on the adapter it runs on an FMA-loop peak (GFLOP/s) and a
// buffer-copy bandwidth (GB/s), then the matmul kernel at 512 rows as a fraction of that peak
// and the decode GEMV (1 row, bf16 weights) as a fraction of that bandwidth (webgpu-measure.ts),
// each with the ratio of the kernel matmul picks to the one-thread-per-output kernel.
// Usage: pnpm bench:webgpu [--reduced]   (--reduced: small sizes for a software adapter)
import { openGpu } from '../src/gpu-context.ts';
import { measureWebGpuKernels } from '../src/webgpu-measure.ts';

const reduced = process.argv.includes('--reduced');
const opened = await openGpu();
if (!opened.ok) {
  console.log(`no WebGPU adapter: ${opened.reason}`);
  process.exit(1);
}
console.log(`adapter: ${opened.context.adapterDescription}${reduced ? ' (reduced sizes)' : ''}`);
const m = await measureWebGpuKernels(opened.context, reduced);
const [M, N, K] = m.matmulShape;
const [GN, GK] = m.gemvShape;
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
console.log(`FMA-loop peak          ${m.fmaPeakGflops.toFixed(1)} GFLOP/s`);
console.log(`buffer-copy bandwidth  ${m.copyGBps.toFixed(1)} GB/s`);
console.log(
  `matmul ${M}x${N}x${K} bf16  ${m.matmulGflops.toFixed(1)} GFLOP/s = ${pct(m.matmulGflops / m.fmaPeakGflops)} of FMA peak`,
);
console.log(
  `  tiled vs one-thread-per-output kernel (same bits): ${m.matmulRowsKernelGflops.toFixed(1)} -> ` +
    `${m.matmulTiledKernelGflops.toFixed(1)} GFLOP/s = ` +
    `${(m.matmulTiledKernelGflops / m.matmulRowsKernelGflops).toFixed(2)}x` +
    (opened.context.isSoftwareAdapter ? ' (software adapter: matmul keeps the old kernel)' : ''),
);
console.log(
  `decode GEMV ${GN}x${GK} bf16  ${m.gemvGBps.toFixed(1)} GB/s = ${pct(m.gemvGBps / m.copyGBps)} of copy bandwidth`,
);
const gemvVsRows = (gemv: number, rows: number) =>
  `${rows.toPrecision(3)} -> ${gemv.toPrecision(3)} GB/s = ${(gemv / rows).toFixed(2)}x`;
console.log(
  `  GEMV vs one-thread-per-output kernel (same bits), 1 row: ${gemvVsRows(m.gemvKernelGBps, m.gemvRowsKernelGBps)}` +
    ` = ${pct(m.gemvKernelGBps / m.copyGBps)} of copy bandwidth` +
    (opened.context.isSoftwareAdapter ? ' (software adapter: matmul keeps the old kernel)' : ''),
);
console.log(
  `  ${m.gemvBatchRows} rows (weight bytes once): ${gemvVsRows(m.gemvKernelBatchGBps, m.gemvRowsKernelBatchGBps)}`,
);
opened.context.device.destroy();
