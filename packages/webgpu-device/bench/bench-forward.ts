// What the WebGPU forward-pass benches share: the first adapter (the process exits with the
// reason when there is none) and a generated checkpoint's forward pass on it, with the device's
// own choice of kernels (the tiled matmul and the GEMV on hardware adapters).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModelWeights } from '@seesaw/gpu-actor';
import { Checkpoint, generateCheckpoint, type ModelConfig, type ModelShapeName } from '@seesaw/model';
import { openGpu } from '../src/gpu-context.ts';
import { WebGpuKernels } from '../src/webgpu-kernels.ts';
import { WebGpuLlamaForward } from '../src/webgpu-llama-forward.ts';

export interface BenchForward {
  adapterDescription: string;
  config: ModelConfig;
  kernels: WebGpuKernels;
  forward: WebGpuLlamaForward;
  /** Removes the checkpoint and destroys the device. */
  close(): void;
}

export async function openBenchForward(
  shape: ModelShapeName,
  dtype: 'bf16' | 'f16' | 'f32',
): Promise<BenchForward> {
  const opened = await openGpu();
  if (!opened.ok) {
    console.log(`no WebGPU adapter: ${opened.reason}`);
    process.exit(1);
  }
  const { context } = opened;
  const dir = mkdtempSync(join(tmpdir(), 'seesaw-webgpu-bench-'));
  const close = () => {
    rmSync(dir, { recursive: true, force: true });
    context.device.destroy();
  };
  try {
    await generateCheckpoint({ shape, seed: 1, dtype, outDir: dir });
    const checkpoint = Checkpoint.open(dir);
    const config = checkpoint.config;
    const kernels = WebGpuKernels.forContext(context);
    const forward = new WebGpuLlamaForward(kernels, config, loadModelWeights(checkpoint));
    checkpoint.close();
    return { adapterDescription: context.adapterDescription, config, kernels, forward, close };
  } catch (error) {
    close();
    throw error;
  }
}
