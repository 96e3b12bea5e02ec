// Worker bootstrap for TypeScript worker files. On Node 20, `--import tsx` in a Worker's
// execArgv does not apply to the worker's own entry module, so spawnWorkerEndpoint starts
// this plain-JS file, which registers tsx's loader and then imports the real entry.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.seesawEntry);
