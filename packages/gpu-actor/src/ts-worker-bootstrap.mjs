// Starts a TypeScript worker entry: on Node 20 a Worker's execArgv `--import tsx` does not
// apply to its entry module, so the Worker runs this file, which installs tsx's loader and
// then imports workerData.tsEntry (a file URL).
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.tsEntry);
