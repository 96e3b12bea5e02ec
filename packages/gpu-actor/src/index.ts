export { CpuDevice, type CpuDeviceOptions } from './cpu-device.ts';
export { samplingUniform } from './sampling-rng.ts';
