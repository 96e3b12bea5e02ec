import { DEVICE_PRESETS, type DeviceProfile, type LinkProfile } from '../hardware.ts';
import type { FittedProfiles } from './fitted-profiles.ts';
import type { GpuOpFit } from './gpu-op-model.ts';

/**
 * Device presets whose efficiency factors come from the fitted measured rates instead of the
 * assumed 0.6 / 0.8: efficiency = achieved rate / datasheet peak of the GPU that was measured.
 * A100 and A100-80GB take the a100 fit (Vidur's A100s are 80 GB SXM), H100 and H200 the h100
 * fit; A10 and L4 (no tables) take the A40 fit's efficiencies, i.e. the A40's achieved rates
 * scaled by the spec-sheet ratios of hardware.md. Attention efficiency and the per-step
 * overhead are not in the tables and stay as assumed.
 */

/** Datasheet peaks of the measured GPUs (dense fp16 tensor FLOP/s, memory bytes/s). */
const MEASURED_GPU_PEAKS: Record<string, { flops: number; bytes: number }> = {
  a100: { flops: 312e12, bytes: 2039e9 },
  h100: { flops: 989e12, bytes: 3350e9 },
  // NVIDIA A40 datasheet (not in hardware.md): 149.7 TFLOPS fp16 tensor, 696 GB/s GDDR6.
  a40: { flops: 149.7e12, bytes: 696e9 },
};

const FIT_FOR_PRESET: Record<string, string> = {
  A10: 'a40',
  L4: 'a40',
  A100: 'a100',
  'A100-80GB': 'a100',
  H100: 'h100',
  H200: 'h100',
};

/** Launch costs of one decoder layer's ops: 4 linear ops plus every elementwise op once. */
export function layerLaunchSeconds(fit: GpuOpFit): number {
  const elementwise = Object.values(fit.elementwise).reduce((sum, rate) => sum + rate.launchSeconds, 0);
  return 4 * fit.linearLaunchSeconds + elementwise;
}

export function calibratedDevice(name: string, profiles: FittedProfiles): DeviceProfile {
  const preset = DEVICE_PRESETS[name];
  const gpu = FIT_FOR_PRESET[name];
  const fit = gpu === undefined ? undefined : profiles.gpus[gpu];
  if (preset === undefined || fit === undefined)
    throw new Error(
      `no fitted profile for device '${name}' (fitted: ${Object.keys(profiles.gpus).join(', ')})`,
    );
  const peaks = MEASURED_GPU_PEAKS[gpu];
  return {
    ...preset,
    matmulEfficiency: fit.matmulFlopsPerSecond / peaks.flops,
    memoryEfficiency: fit.linearBytesPerSecond / peaks.bytes,
    layerLaunchSeconds: layerLaunchSeconds(fit),
  };
}

/**
 * The device-to-device link of a cluster from the measured collectives: NVSwitch all-reduce
 * over 8 GPUs of a DGX for -nvlink A100/H100; for PCIe A100/H100 the all-reduce over 4 GPUs of
 * an NVLink-pair machine (beyond a pair it crosses PCIe); for A10/L4 the A40 pair's send/recv,
 * which goes through the host bridge (about 4 GB/s), as the ring's step.
 */
export function calibratedIntraHostLink(
  name: string,
  nvlink: boolean,
  profiles: FittedProfiles,
): LinkProfile {
  const gpu = FIT_FOR_PRESET[name];
  const key =
    gpu === 'a40'
      ? 'a40_pairwise_nvlink/send_recv/2w/2dpn'
      : nvlink
        ? `${gpu}_dgx/all_reduce/8w/8dpn`
        : `${gpu === 'h100' ? 'h100' : 'a100'}_pairwise_nvlink/all_reduce/4w/4dpn`;
  const link = profiles.links[key];
  if (link === undefined) throw new Error(`no fitted collective '${key}' for device '${name}'`);
  return link;
}
