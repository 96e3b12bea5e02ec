// Bench worker: one rank of a SharedMemoryGroup running a T2-decode-like loop (a stretch of
// compute, then an all-reduce of a decode step's hidden state) and reporting its time per round.
import { parentPort, workerData } from 'node:worker_threads';
import { SharedMemoryGroup, type SharedMemoryGroupDescriptor } from '../src/shared-memory-group.ts';

export interface BarrierSpinWorkerInput {
  descriptor: SharedMemoryGroupDescriptor;
  numRounds: number;
  /** Compute between all-reduces, and how much it varies from round to round (uniform +-). */
  workMicros: number;
  jitterMicros: number;
  reduceFloats: number;
  seed: number;
}

const input = (workerData as { payload: BarrierSpinWorkerInput }).payload;
const group = new SharedMemoryGroup(input.descriptor, 20_000);
const buf = new Float32Array(input.reduceFloats).fill(0.5);
let state = input.seed >>> 0 || 1;
function random(): number {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 2 ** 32;
}
// Busy work on the CPU (the scratch keeps it from being optimised away).
const scratch = new Float64Array(256);
function busy(micros: number): void {
  const until = performance.now() + micros / 1000;
  let x = 1;
  while (performance.now() < until) for (let i = 0; i < 256; i++) x = scratch[i] = x * 1.0000001 + i;
}
const start = performance.now();
for (let round = 0; round < input.numRounds; round++) {
  busy(input.workMicros + (2 * random() - 1) * input.jitterMicros);
  await group.allReduceSum(buf);
}
parentPort?.postMessage({ microsPerRound: ((performance.now() - start) * 1000) / input.numRounds });
