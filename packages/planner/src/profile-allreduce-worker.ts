// Worker of `seesaw profile`: joins a shared-memory TP group (the transport device workers on
// one host use) and times back-to-back all-reduces of each requested length.
import { parentPort, workerData } from 'node:worker_threads';
import { SharedMemoryGroup, type SharedMemoryGroupDescriptor } from '@seesaw/gpu-actor';

const { descriptor, lengths, numOps } = workerData as {
  descriptor: SharedMemoryGroupDescriptor;
  lengths: number[];
  numOps: number;
};
const group = new SharedMemoryGroup(descriptor, 20_000);
const micros: number[] = [];
for (const length of lengths) {
  const buffer = new Float32Array(length).fill(0.25);
  await group.allReduceSum(buffer);
  const start = process.hrtime.bigint();
  for (let i = 0; i < numOps; i++) await group.allReduceSum(buffer);
  micros.push(Number(process.hrtime.bigint() - start) / 1000 / numOps);
}
parentPort?.postMessage(micros);
