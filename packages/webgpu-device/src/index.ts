// Public API of @seesaw/webgpu-device: the WebGPU backend of the device actor.
export { type GpuContext, type GpuOpenResult, openGpu } from './gpu-context.ts';
