/**
 * The paper's 8xA100 Llama-2-70B figures with the assumed and the calibrated (fitted to Vidur's
 * measured tables) device profiles: best static on PCIe over best static on NVLink (paper about
 * 0.61) and the best Seesaw pair's gain over the best static on PCIe (paper 1.46x arxiv).
 * The arxiv trace is not in this checkout, so the workload is constant at its mean lengths
 * (2588 / 291, rounded): `pnpm tsx packages/planner/bench/paper-pcie-ratio.ts [NUM_REQUESTS]`.
 */
import {
  type ClusterProfile,
  calibratedClusterPreset,
  clusterPreset,
  constantWorkload,
  modelPreset,
  parallelConfigsOver,
  type SimulationTarget,
  shippedFittedProfiles,
  simulate,
  targetLabel,
} from '../src/index.ts';

const model = modelPreset('llama-2-70b');
const workload = constantWorkload(Number(process.argv[2] ?? 64), 2600, 290);
const profiles = shippedFittedProfiles();
const configs = parallelConfigsOver(8);

async function best(
  cluster: ClusterProfile,
  targets: SimulationTarget[],
): Promise<{ label: string; tokensPerSecond: number }> {
  let found = { label: 'none', tokensPerSecond: 0 };
  for (const target of targets) {
    try {
      const report = await simulate(model, cluster, target, workload);
      if (report.totalTokensPerSecond > found.tokensPerSecond)
        found = { label: targetLabel(target), tokensPerSecond: report.totalTokensPerSecond };
    } catch {
      // Infeasible (does not fit in memory): not a candidate.
    }
  }
  return found;
}

const statics: SimulationTarget[] = configs.map((parallel) => ({ kind: 'static', parallel }));
const pairs: SimulationTarget[] = configs.flatMap((prefill) =>
  configs
    .filter((decode) => decode !== prefill && decode.dp === prefill.dp)
    .map((decode): SimulationTarget => ({ kind: 'seesaw', prefill, decode })),
);
for (const mode of ['assumed', 'calibrated'] as const) {
  const preset = (spec: string): ClusterProfile =>
    mode === 'assumed' ? clusterPreset(spec) : calibratedClusterPreset(spec, profiles);
  const pcie = preset('8xA100');
  const nvlink = preset('8xA100-nvlink');
  const pcieStatic = await best(pcie, statics);
  const nvlinkStatic = await best(nvlink, statics);
  const pciePair = await best(pcie, pairs);
  console.log(
    `${mode.padEnd(10)} PCIe static ${pcieStatic.label} ${pcieStatic.tokensPerSecond.toFixed(0)} tok/s, ` +
      `NVLink static ${nvlinkStatic.label} ${nvlinkStatic.tokensPerSecond.toFixed(0)} tok/s, ` +
      `ratio ${(pcieStatic.tokensPerSecond / nvlinkStatic.tokensPerSecond).toFixed(2)}; ` +
      `PCIe pair ${pciePair.label} ${pciePair.tokensPerSecond.toFixed(0)} tok/s, ` +
      `gain ${(pciePair.tokensPerSecond / pcieStatic.tokensPerSecond).toFixed(2)}x`,
  );
}
