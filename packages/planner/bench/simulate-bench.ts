// Simulator speed: 2000 ShareGPT-like requests (the paper's sample) on 8 simulated A10s, one
// static configuration and one Seesaw pair, timed on this machine. Target: each under 10 s.
// Run from the repository root: pnpm bench:simulate
import { parseParallelConfig } from '@seesaw/model';
import {
  clusterPreset,
  modelPreset,
  type SimulationTarget,
  shareGptWorkload,
  simulate,
} from '../src/index.ts';

const model = modelPreset('llama-2-70b');
const cluster = clusterPreset('8xA10');
const workload = shareGptWorkload({ numRequests: 2000, seed: 0 });
const targets: SimulationTarget[] = [
  { kind: 'static', parallel: parseParallelConfig('T4P2') },
  { kind: 'static', parallel: parseParallelConfig('P8') },
  { kind: 'seesaw', prefill: parseParallelConfig('P8'), decode: parseParallelConfig('T4P2') },
  { kind: 'seesaw', prefill: parseParallelConfig('P8'), decode: parseParallelConfig('T8') },
];
for (const target of targets) {
  const start = performance.now();
  const report = await simulate(model, cluster, target, workload);
  const seconds = (performance.now() - start) / 1000;
  console.log(
    `${report.label.padEnd(9)} 2000 ShareGPT requests on ${cluster.name}: simulated ${report.elapsedSeconds.toFixed(0)} s ` +
      `(${report.numSteps} steps, ${report.totalTokensPerSecond.toFixed(0)} tok/s) in ${seconds.toFixed(2)} s wall` +
      (seconds < 10 ? '' : '  <-- over the 10 s target'),
  );
}
