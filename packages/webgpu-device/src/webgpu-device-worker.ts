// Entry of a device worker thread on the WebGPU backend (started by the coordinator through
// spawnWorkerEndpoint, like gpu-actor's device-worker.ts): the same runtime, with every shard
// computed by a WebGpuDevice.
import { DeviceWorkerRuntime } from '@seesaw/gpu-actor';
import { webGpuStepDevice } from './webgpu-device.ts';

await DeviceWorkerRuntime.start(webGpuStepDevice);
