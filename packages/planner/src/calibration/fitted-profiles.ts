import { readFileSync } from 'node:fs';
import type { LinkProfile } from '../hardware.ts';
import { loadComputeSamples, loadNetworkSamples } from './calibration-tables.ts';
import { fitCollectiveLink, fitGpuOps, groupBy, networkGroupKey } from './fit-profiles.ts';
import type { GpuOpFit } from './gpu-op-model.ts';

/**
 * The GPU op rates and collective links fitted to measured tables, as kept in
 * `packages/planner/calibration/fitted-profiles.json` (regenerate with
 * `pnpm fit:gpu-profiles`, which runs `bench/fit-gpu-profiles.ts`).
 */
export interface FittedProfiles {
  /** Where the measurements came from. */
  source: string;
  /** Per measured GPU (a100, h100, a40): the op rates. */
  gpus: Record<string, GpuOpFit>;
  /** Per measured collective group (cluster/collective/workers/devices-per-node): latency + data / rate. */
  links: Record<string, LinkProfile>;
}

export function fitProfiles(calibrationDir: string, source: string): FittedProfiles {
  const gpus: Record<string, GpuOpFit> = {};
  for (const [gpu, samples] of groupBy(loadComputeSamples(calibrationDir), (s) => s.gpu))
    gpus[gpu] = fitGpuOps(samples);
  const links: Record<string, LinkProfile> = {};
  for (const [key, samples] of groupBy(loadNetworkSamples(calibrationDir), networkGroupKey))
    links[key] = fitCollectiveLink(samples);
  return { source, gpus, links };
}

export const FITTED_PROFILES_URL = new URL('../../calibration/fitted-profiles.json', import.meta.url);

let cached: FittedProfiles | undefined;

/** The fitted profiles shipped with the planner. */
export function shippedFittedProfiles(): FittedProfiles {
  cached ??= JSON.parse(readFileSync(FITTED_PROFILES_URL, 'utf8')) as FittedProfiles;
  return cached;
}
