// Worker of `seesaw profile`: the all-reduce as a TP decode step meets it. Each worker runs a
// decode-sized matmul and then all-reduces its output, many times over (as a step's layers
// do), and separately the same matmuls without the all-reduces; the difference per all-reduce
// is what a step pays for it, waiting for a partner that the machine's other threads may have
// descheduled included. Posts [seconds with all-reduces, seconds without] per iteration.
import { parentPort, workerData } from 'node:worker_threads';
import { SharedMemoryGroup, type SharedMemoryGroupDescriptor } from '@seesaw/gpu-actor';
import { f32ToBf16, matmul, setNumThreads, type Weight } from '@seesaw/kernels';

const { descriptor, numOps, rows, threads } = workerData as {
  descriptor: SharedMemoryGroupDescriptor;
  numOps: number;
  rows: number;
  threads: number;
};
setNumThreads(threads);
const group = new SharedMemoryGroup(descriptor, 20_000);
const [n, k] = [768, 1024];
const ring: Weight[] = Array.from({ length: 8 }, (_, i) => {
  const values = new Float32Array(n * k);
  for (let j = 0; j < values.length; j++) values[j] = (((j * 2654435761 + i) >>> 0) / 2 ** 32 - 0.5) * 0.1;
  const data = new Uint16Array(n * k);
  f32ToBf16(values, data);
  return { dtype: 'bf16', rows: n, cols: k, data };
});
const x = new Float32Array(rows * k).fill(0.01);
const out = new Float32Array(rows * n);

const run = async (withAllReduce: boolean): Promise<number> => {
  await group.allReduceSum(out);
  const start = performance.now();
  for (let i = 0; i < numOps; i++) {
    matmul(out, x, rows, ring[i % ring.length]);
    if (withAllReduce) await group.allReduceSum(out);
  }
  return (performance.now() - start) / 1000 / numOps;
};
await run(true);
const together = await run(true);
const alone = await run(false);
await group.allReduceSum(out);
parentPort?.postMessage([together, alone]);
