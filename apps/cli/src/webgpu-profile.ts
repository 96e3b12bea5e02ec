/**
 * `seesaw profile --backend webgpu`: the host parts of the profile (links, all-reduce, copies
 * through host memory, which the GPU backend's TP/PP and re-shards go through) as measured for
 * the CPU, with the device's compute figures from the WebGPU kernels on the first adapter: the
 * matmul at 512 rows as its FLOP rate and the decode GEMV's weight streaming as its memory
 * bandwidth. The CPU kernel timings are dropped, so the planner costs steps by that roofline.
 */
import type { MeasuredProfile } from '@seesaw/planner';

export async function withWebGpuDevice(profile: MeasuredProfile, reduced: boolean): Promise<MeasuredProfile> {
  const { measureWebGpuKernels, openGpu } = await import('@seesaw/webgpu-device');
  const opened = await openGpu();
  if (!opened.ok) throw new Error(`--backend webgpu: no WebGPU adapter: ${opened.reason}`);
  try {
    const m = await measureWebGpuKernels(opened.context, reduced);
    const { cpuKernels: _cpu, ...device } = profile.device;
    return {
      ...profile,
      name: `${m.adapter} (${profile.devicesPerHost} device actors)`,
      device: {
        ...device,
        name: `webgpu: ${m.adapter}`,
        matmulFlopsPerSecond: m.matmulGflops * 1e9,
        memoryBytesPerSecond: m.gemvGBps * 1e9,
      },
      measurements: {
        ...profile.measurements,
        webgpuFmaPeakGflops: m.fmaPeakGflops,
        webgpuCopyGBps: m.copyGBps,
        webgpuMatmulGflops: m.matmulGflops,
        webgpuGemvGBps: m.gemvGBps,
      },
    };
  } finally {
    opened.context.device.destroy();
  }
}
