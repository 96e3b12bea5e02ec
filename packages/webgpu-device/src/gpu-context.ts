import { create, globals } from 'webgpu';

/**
 * Opening WebGPU devices through Dawn's Node.js binding. Dawn's globals (GPUBufferUsage,
 * GPUMapMode, ...) are installed on globalThis once, as a browser would have them.
 */
let instance: GPU | null = null;

/**
 * The process's one Dawn instance. It must stay referenced for as long as any device lives:
 * if it is garbage-collected, Dawn's event processing dereferences the freed instance (seen
 * as futex/mutex assertion failures and segfaults on lavapipe).
 */
function gpuInstance(): GPU {
  if (instance === null) {
    Object.assign(globalThis, globals);
    instance = create([]);
  }
  return instance;
}

/** An open device and what its adapter offers. */
export interface GpuContext {
  device: GPUDevice;
  adapterDescription: string;
  /** A CPU-emulated adapter (lavapipe, SwiftShader): its shared memory and barriers are slow. */
  isSoftwareAdapter: boolean;
  features: ReadonlySet<string>;
}

export type GpuOpenResult = { ok: true; context: GpuContext } | { ok: false; reason: string };

/**
 * Opens a device on the first adapter. Never throws for a missing driver or adapter: the result
 * says why (tests skip with that reason; the CLI reports it). Other failures propagate.
 */
export async function openGpu(): Promise<GpuOpenResult> {
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpuInstance().requestAdapter();
  } catch (error) {
    return { ok: false, reason: `WebGPU adapter request failed: ${(error as Error).message}` };
  }
  if (adapter === null) {
    return {
      ok: false,
      reason:
        'no WebGPU adapter (no Vulkan driver? on Debian: apt-get install -t bookworm-backports mesa-vulkan-drivers)',
    };
  }
  const info = adapter.info;
  const adapterDescription =
    [info.vendor, info.architecture, info.device, info.description].filter((s) => s).join(' ') ||
    'unnamed adapter';
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
    },
  });
  const isSoftwareAdapter =
    (info as { isFallbackAdapter?: boolean }).isFallbackAdapter === true ||
    /llvmpipe|lavapipe|swiftshader/i.test(adapterDescription);
  return {
    ok: true,
    context: { device, adapterDescription, isSoftwareAdapter, features: new Set(adapter.features) },
  };
}
