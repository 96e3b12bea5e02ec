import {
  type ClusterProfile,
  clusterPreset,
  DEVICE_PRESETS,
  type DeviceProfile,
  type LinkProfile,
} from '../hardware.ts';
import { ELEMENTWISE_OPS, LINEAR_OPS } from './calibration-tables.ts';
import type { FittedProfiles } from './fitted-profiles.ts';
import type { GpuOpFit, LinearRates } from './gpu-op-model.ts';

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

/**
 * The planner's layer roofline has one matmul rate and one streaming rate for a layer's linear
 * ops: the fit of exactly that form to the summed measured linear ops (`GpuOpFit.layer`).
 */
export function layerLinearRates(fit: GpuOpFit): LinearRates {
  return fit.layer;
}

/**
 * Launch costs of one decoder layer's ops: the 4 linear ops (the layer fit's) plus every
 * elementwise op but the embedding once, at its small-regime fixed cost (a decode step's norms
 * and adds are small). The embedding gather runs once per step, not per layer.
 */
export function layerLaunchSeconds(fit: GpuOpFit): number {
  const elementwise = ELEMENTWISE_OPS.filter((op) => op !== 'emb').reduce(
    (sum, op) => sum + fit.elementwise[op].small.launchSeconds,
    0,
  );
  return LINEAR_OPS.length * fit.layer.launchSeconds + elementwise;
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
  const rates = layerLinearRates(fit);
  return {
    ...preset,
    matmulEfficiency: rates.matmulFlopsPerSecond / peaks.flops,
    memoryEfficiency: rates.bytesPerSecond / peaks.bytes,
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

/**
 * A cluster preset (`8xA100`, `8xA100-nvlink`, `2x4xH100`) whose device and device-to-device
 * link come from the fitted profiles instead of the assumed efficiency factors and ideal links.
 * Presets without a fit (none today) keep the assumed profile.
 */
export function calibratedClusterPreset(spec: string, profiles: FittedProfiles): ClusterProfile {
  const cluster = clusterPreset(spec);
  const name = cluster.device.name;
  if (FIT_FOR_PRESET[name] === undefined) return cluster;
  const nvlink = /-nvlink$/i.test(spec.trim());
  return {
    ...cluster,
    device: calibratedDevice(name, profiles),
    intraHostLink: calibratedIntraHostLink(name, nvlink, profiles),
  };
}

/** The assumed preset that stands for each measured GPU (the A40 has none; the A10's factors). */
const ASSUMED_PRESET_FOR_MEASURED: Record<string, string> = { a100: 'A100-80GB', h100: 'H100', a40: 'A10' };

/**
 * The assumed presets' layer roofline (datasheet peak x 0.6 matmul, x 0.8 memory, no launch
 * cost): what `plan` used before the fit, held against the same tables by `validate`.
 * Undefined for a GPU no preset stands for.
 */
export function assumedLayerRates(gpu: string): LinearRates | undefined {
  const preset = DEVICE_PRESETS[ASSUMED_PRESET_FOR_MEASURED[gpu] ?? ''];
  const peaks = MEASURED_GPU_PEAKS[gpu];
  if (preset === undefined || peaks === undefined) return undefined;
  return {
    matmulFlopsPerSecond: peaks.flops * preset.matmulEfficiency,
    bytesPerSecond: peaks.bytes * preset.memoryEfficiency,
    launchSeconds: 0,
  };
}
