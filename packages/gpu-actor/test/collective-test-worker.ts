// Test worker: joins a SharedMemoryGroup and runs a list of collectives back to back, then
// reports each result (or error message) and the time per op of a timed allReduceSum loop.
import { parentPort, workerData } from 'node:worker_threads';
import { SharedMemoryGroup, type SharedMemoryGroupDescriptor } from '../src/shared-memory-group.ts';

export type CollectiveOp =
  | { kind: 'allReduceSum'; input: Float32Array }
  | { kind: 'allGather'; input: Float32Array; outLength: number };

export interface CollectiveWorkerInput {
  descriptor: SharedMemoryGroupDescriptor;
  ops: CollectiveOp[];
  timed?: { length: number; numOps: number };
}

export interface CollectiveWorkerOutput {
  results: Array<Float32Array | string>;
  microsPerTimedOp?: number;
}

const { descriptor, ops, timed } = (workerData as { payload: CollectiveWorkerInput }).payload;
const group = new SharedMemoryGroup(descriptor, 20_000);
const results: Array<Float32Array | string> = [];
for (const op of ops) {
  try {
    if (op.kind === 'allReduceSum') {
      const buf = op.input.slice();
      await group.allReduceSum(buf);
      results.push(buf);
    } else {
      const out = new Float32Array(op.outLength);
      await group.allGather(op.input, out);
      results.push(out);
    }
  } catch (error) {
    results.push((error as Error).message);
  }
}
let microsPerTimedOp: number | undefined;
if (timed) {
  const buf = new Float32Array(timed.length).fill(1 / 3);
  const start = process.hrtime.bigint();
  for (let i = 0; i < timed.numOps; i++) await group.allReduceSum(buf);
  microsPerTimedOp = Number(process.hrtime.bigint() - start) / 1000 / timed.numOps;
}
const output: CollectiveWorkerOutput = { results, microsPerTimedOp };
parentPort?.postMessage(output);
