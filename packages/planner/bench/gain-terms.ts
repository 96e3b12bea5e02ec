/**
 * Which cost terms put the planner's Seesaw gain on 8xA100 PCIe (Llama-2-70B, arxiv) where it
 * is: the search re-run with one term changed at a time (docs/planner-validation.md).
 * Run: pnpm tsx packages/planner/bench/gain-terms.ts
 */
import { calibratedClusterPreset } from '../src/calibration/calibrated-devices.ts';
import { shippedFittedProfiles } from '../src/calibration/fitted-profiles.ts';
import type { ClusterProfile } from '../src/hardware.ts';
import { modelPreset } from '../src/model-presets.ts';
import { searchConfigurations } from '../src/search.ts';
import { loadWorkload } from '../src/workloads.ts';

const base = calibratedClusterPreset('8xA100', shippedFittedProfiles());
const variants: [string, ClusterProfile][] = [
  ['as shipped', base],
  ['step overhead 2 ms -> 0', { ...base, device: { ...base.device, stepOverheadSeconds: 0 } }],
  ['attention efficiency 0.4 -> 0.6', { ...base, device: { ...base.device, attentionEfficiency: 0.6 } }],
  [
    'PCIe all-reduce bandwidth x1.5',
    {
      ...base,
      intraHostLink: { ...base.intraHostLink, bytesPerSecond: base.intraHostLink.bytesPerSecond * 1.5 },
    },
  ],
  [
    'PCIe all-reduce bandwidth x1/1.5',
    {
      ...base,
      intraHostLink: { ...base.intraHostLink, bytesPerSecond: base.intraHostLink.bytesPerSecond / 1.5 },
    },
  ],
  ['layer launch cost -> 0', { ...base, device: { ...base.device, layerLaunchSeconds: 0 } }],
];
const workload = loadWorkload('arxiv', { maxModelLen: 4096 });
const only = process.argv[2];
for (const [name, cluster] of variants) {
  if (only !== undefined && !name.includes(only)) continue;
  const result = await searchConfigurations(modelPreset('llama-2-70b'), cluster, workload, { numThreads: 2 });
  const s = result.bestStatic;
  const p = result.bestPair;
  console.log(
    `${name.padEnd(34)} static ${s?.label} ${s?.totalTokensPerSecond.toFixed(0)}  pair ${p?.label} ${p?.totalTokensPerSecond.toFixed(0)}  gain ${result.gain.toFixed(2)}x`,
  );
}
