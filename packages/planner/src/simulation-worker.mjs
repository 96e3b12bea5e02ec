// Piscina worker entry: a plain-JS file (Node 20 workers do not inherit tsx for their entry
// module), which registers tsx's loader and hands each task to the TypeScript simulator.
import { register } from 'tsx/esm/api';

register();
const { runSimulationJob } = await import('./simulation-pool.ts');

export default function run(job) {
  return runSimulationJob(job);
}
