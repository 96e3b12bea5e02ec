// Test worker: one TP rank (a CpuDevice shard joined to a SharedMemoryGroup) that executes the
// steps posted to it and posts back each StepResult (or the error message).

import { parentPort, workerData } from 'node:worker_threads';
import type { ShardPosition } from '@seesaw/model';
import type { StepBatch } from '@seesaw/protocol';
import { CpuDevice, type CpuDeviceOptions } from '../src/cpu-device.ts';
import { SharedMemoryGroup, type SharedMemoryGroupDescriptor } from '../src/shared-memory-group.ts';

export interface TpRankWorkerInput {
  modelDir: string;
  shard: ShardPosition;
  descriptor: SharedMemoryGroupDescriptor;
  options: Omit<CpuDeviceOptions, 'shard' | 'group'>;
}

export type TpRankWorkerMessage =
  | { kind: 'ready'; numKvBlocks: number; weightBytes: number }
  | { kind: 'result'; result: Awaited<ReturnType<CpuDevice['execute']>> }
  | { kind: 'error'; message: string };

const port = parentPort;
if (!port) throw new Error('tp-rank-test-worker must run in a worker thread');
const { modelDir, shard, descriptor, options } = (workerData as { payload: TpRankWorkerInput }).payload;
const group = new SharedMemoryGroup(descriptor, 20_000);
const device = await CpuDevice.load(modelDir, { ...options, shard, group });
const post = (message: TpRankWorkerMessage) => port.postMessage(message);
post({ kind: 'ready', numKvBlocks: device.numKvBlocks, weightBytes: device.weightBytes });
port.on('message', (step: StepBatch | null) => {
  if (step === null) {
    port.close();
    return;
  }
  device.execute(step).then(
    (result) => post({ kind: 'result', result }),
    (error: Error) => post({ kind: 'error', message: error.message }),
  );
});
