// Public API of @seesaw/webgpu-device: the WebGPU backend of the device actor.
export { type GpuContext, type GpuOpenResult, openGpu } from './gpu-context.ts';
export { WebGpuDevice, webGpuStepDevice } from './webgpu-device.ts';
export { measureWebGpuKernels, type WebGpuMeasurements } from './webgpu-measure.ts';

/** The WebGPU device worker's entry module, for spawnWorkerEndpoint (gpu-actor's deviceWorkerUrl's twin). */
export function webGpuDeviceWorkerUrl(): URL {
  return new URL('./webgpu-device-worker.ts', import.meta.url);
}
