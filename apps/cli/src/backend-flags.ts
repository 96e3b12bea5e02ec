/**
 * Which backend the device actors compute on: --backend cpu|webgpu (default cpu), and
 * --gpus-per-adapter K (WebGPU: K device actors share one adapter, so tests and small GPUs can
 * run several). The backend is chosen here once, as the device worker entry module the cluster
 * spawns; everything above the device worker is the same for both.
 */
import { type FlagValues, optionalInteger, optionalString, UsageError } from './args.ts';

export type DeviceBackend = 'cpu' | 'webgpu';
const BACKENDS: readonly DeviceBackend[] = ['cpu', 'webgpu'];

export interface BackendSettings {
  backend: DeviceBackend;
  /** Device actors per WebGPU adapter; 1 when absent. */
  gpusPerAdapter: number;
}

export function readBackendSettings(values: FlagValues): BackendSettings {
  const text = optionalString(values, 'backend') ?? 'cpu';
  if (!BACKENDS.includes(text as DeviceBackend)) {
    throw new UsageError(`--backend must be one of ${BACKENDS.join(', ')}, got '${text}'`);
  }
  const backend = text as DeviceBackend;
  const gpusPerAdapter = optionalInteger(values, 'gpus-per-adapter', { min: 1, max: 64 });
  if (gpusPerAdapter !== undefined && backend !== 'webgpu') {
    throw new UsageError('--gpus-per-adapter needs --backend webgpu');
  }
  return { backend, gpusPerAdapter: gpusPerAdapter ?? 1 };
}

/**
 * Refuses a WebGPU layout this build cannot place: every device holds the whole model (no TP or
 * PP on the GPU yet), and Dawn's requestAdapter reaches one adapter, so all device actors share
 * it and must fit in --gpus-per-adapter.
 */
export function checkWebGpuPlacement(numDevices: number, gpusPerAdapter: number): void {
  if (numDevices > gpusPerAdapter) {
    throw new UsageError(
      `--backend webgpu places device actors on the first adapter only for now: --devices ${numDevices} ` +
        `needs --gpus-per-adapter ${numDevices} (one actor per adapter is not done yet)`,
    );
  }
}

/** The device worker entry module of `backend` (loaded lazily: the WebGPU one pulls in Dawn). */
export async function deviceWorkerUrlOf(backend: DeviceBackend): Promise<URL> {
  if (backend === 'webgpu') {
    const { webGpuDeviceWorkerUrl } = await import('@seesaw/webgpu-device');
    return webGpuDeviceWorkerUrl();
  }
  const { deviceWorkerUrl } = await import('@seesaw/gpu-actor');
  return deviceWorkerUrl();
}
