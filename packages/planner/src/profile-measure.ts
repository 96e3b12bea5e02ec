import { cpus, totalmem } from 'node:os';
import { measureFreshPageCopyBytesPerSecond } from '@seesaw/coordinator';
import { createSharedMemoryGroup, measureKvStoreCopyRate } from '@seesaw/gpu-actor';
import { setNumThreads } from '@seesaw/kernels';
import { startWorker } from '@seesaw/protocol';
import type { CpuKernelProfile } from './cpu-kernel-costs.ts';
import type { LinkProfile } from './hardware.ts';
import type { MeasuredProfile } from './profile-file.ts';
import {
  type KernelTimings,
  type KernelWorkerInput,
  MATMUL_ROW_COUNTS,
  QUICK_MATMUL_ROW_COUNTS,
} from './profile-kernels-shapes.ts';
import { measureAttention, measureCopy, measureMatmul, measureSampling } from './profile-micro.ts';
import { measureReshardWeightAssembly } from './profile-reshard-local.ts';
import { measureHostWeightReads, measurePeerWeightMoves } from './profile-reshard-moves.ts';
import { measureStepMessaging } from './profile-step-messaging.ts';

export interface ProfileOptions {
  /** Device workers on this host (default 2). */
  devices?: number;
  /** Kernel threads per device worker (default cores / devices, at least 1). */
  threadsPerDevice?: number;
  /** Memory budget of one device worker (default: RAM / 2 / devices). */
  deviceMemoryBytes?: number;
  /** Host KV memory per device (default: RAM / 4 / devices). */
  hostMemoryBytesPerDevice?: number;
  /** Smaller problem sizes (tests). */
  quick?: boolean;
}

/**
 * Shared-memory all-reduce between two worker threads at a small and a large size; fits
 * t = latency + S / bandwidth (2 ranks: each moves S once).
 */
async function measureAllReduce(quick: boolean): Promise<LinkProfile> {
  const lengths = [256, quick ? 256 * 1024 : 2 * 1024 * 1024];
  const descriptors = createSharedMemoryGroup(2, 1024 * 1024);
  const entry = new URL('./profile-allreduce-worker.ts', import.meta.url);
  const results = await Promise.all(
    descriptors.map(
      (descriptor) =>
        new Promise<number[]>((resolve, reject) => {
          const worker = startWorker(entry, {
            workerData: { descriptor, lengths, numOps: quick ? 20 : 100 },
          });
          worker.once('message', (micros: number[]) => {
            resolve(micros);
            void worker.terminate();
          });
          worker.once('error', reject);
        }),
    ),
  );
  const micros = lengths.map((_, i) => Math.max(results[0][i], results[1][i]));
  const [smallBytes, largeBytes] = lengths.map((length) => length * 4);
  const slope = (micros[1] - micros[0]) / 1e6 / (largeBytes - smallBytes);
  const bytesPerSecond = slope > 0 ? 1 / slope : largeBytes / (micros[1] / 1e6);
  return { bytesPerSecond, latencySeconds: Math.max(0, micros[0] / 1e6 - smallBytes / bytesPerSecond) };
}

/**
 * The kernels at the engine's shapes in `devices` worker threads at once (each as a device
 * worker, `threads` kernel threads). Per figure the slowest worker's: a TP step waits for its
 * slowest rank.
 */
async function measureKernelsTogether(
  devices: number,
  threads: number,
  quick: boolean,
): Promise<KernelTimings> {
  const rowCounts = [...(quick ? QUICK_MATMUL_ROW_COUNTS : MATMUL_ROW_COUNTS)];
  const input: KernelWorkerInput = {
    threads,
    quick,
    barrier: new SharedArrayBuffer(8),
    numWorkers: devices,
    rowCounts,
  };
  const entry = new URL('./profile-kernels-worker.ts', import.meta.url);
  const results = await Promise.all(
    Array.from(
      { length: devices },
      () =>
        new Promise<KernelTimings>((resolve, reject) => {
          const worker = startWorker(entry, { workerData: input });
          worker.once('message', (timings: KernelTimings) => {
            resolve(timings);
            void worker.terminate();
          });
          worker.once('error', reject);
        }),
    ),
  );
  const slowest = (pick: (t: KernelTimings) => number) => Math.max(...results.map(pick));
  const slowestRate = (pick: (t: KernelTimings) => number) => Math.min(...results.map(pick));
  return {
    matmulSecondsPerRowParam: rowCounts.map((_, i) => slowest((t) => t.matmulSecondsPerRowParam[i])),
    elementwiseSecondsPerElement: slowest((t) => t.elementwiseSecondsPerElement),
    decodeAttentionFlopsPerSecond: slowestRate((t) => t.decodeAttentionFlopsPerSecond),
    prefillAttentionFlopsPerSecond: slowestRate((t) => t.prefillAttentionFlopsPerSecond),
    sampleSecondsPerLogit: slowest((t) => t.sampleSecondsPerLogit),
  };
}

function kernelProfile(rowCounts: number[], timings: KernelTimings): CpuKernelProfile {
  return {
    matmulRows: rowCounts,
    matmulSecondsPerRowParam: timings.matmulSecondsPerRowParam,
    elementwiseSecondsPerElement: timings.elementwiseSecondsPerElement,
    decodeAttentionFlopsPerSecond: timings.decodeAttentionFlopsPerSecond,
    prefillAttentionFlopsPerSecond: timings.prefillAttentionFlopsPerSecond,
    sampleSecondsPerLogit: timings.sampleSecondsPerLogit,
  };
}

/**
 * Seconds a decode step pays per all-reduce between kernel calls (see profile-sync-worker.ts):
 * with-all-reduce minus without, per operation, the slower worker's.
 */
async function measureAllReduceInCompute(devices: number, threads: number, quick: boolean): Promise<number> {
  if (devices < 2) return 0;
  const descriptors = createSharedMemoryGroup(devices, 1024 * 1024);
  const entry = new URL('./profile-sync-worker.ts', import.meta.url);
  const results = await Promise.all(
    descriptors.map(
      (descriptor) =>
        new Promise<number[]>((resolve, reject) => {
          const worker = startWorker(entry, {
            workerData: { descriptor, numOps: quick ? 40 : 200, rows: 32, threads },
          });
          worker.once('message', (seconds: number[]) => {
            resolve(seconds);
            void worker.terminate();
          });
          worker.once('error', reject);
        }),
    ),
  );
  return Math.max(0, ...results.map(([together, alone]) => together - alone));
}

/**
 * Measures this machine as a one-host cluster of `devices` CPU device workers: the real
 * kernels (@seesaw/kernels) for compute and weight streaming, the shared-memory group the
 * workers all-reduce over, and memory copies for the host tier. Efficiencies are 1 because
 * the figures are already what the kernels reach.
 */
export async function measureProfile(options: ProfileOptions = {}): Promise<MeasuredProfile> {
  const devices = options.devices ?? 2;
  const threads = options.threadsPerDevice ?? Math.max(1, Math.floor(cpus().length / devices));
  const quick = options.quick ?? false;
  setNumThreads(threads);
  const { flopsPerSecond, weightBytesPerSecond } = measureMatmul(quick);
  const attentionFlops = measureAttention(quick);
  const soloSampleSecondsPerLogit = measureSampling();
  const kernels = await measureKernelsTogether(devices, threads, quick);
  const alone = devices > 1 ? await measureKernelsTogether(1, threads, quick) : kernels;
  const rowCounts = [...(quick ? QUICK_MATMUL_ROW_COUNTS : MATMUL_ROW_COUNTS)];
  const sampleSecondsPerLogit = kernels.sampleSecondsPerLogit;
  const copy = measureCopy(quick);
  const backToBack = await measureAllReduce(quick);
  const inCompute = await measureAllReduceInCompute(devices, threads, quick);
  // A step's all-reduces come between kernel calls: their fixed cost is what they cost there.
  const allReduce = { ...backToBack, latencySeconds: Math.max(backToBack.latencySeconds, inCompute) };
  const reshardPeerLink = await measurePeerWeightMoves(quick);
  const reshardHostLink = measureHostWeightReads(quick);
  const reshardWeightAssembly = measureReshardWeightAssembly(quick);
  const messaging = await measureStepMessaging(quick);
  // KV puts and gets go through the host's kv-store worker, which copies straight between its
  // slots and the device cache's shared memory: timed on that path.
  const kvStoreCopy = await measureKvStoreCopyRate(quick);
  // A KV cache's pages are mapped on first write: the engine's first write into each block.
  const kvFirstTouchBytesPerSecond = await measureFreshPageCopyBytesPerSecond({
    numBytes: (quick ? 16 : 64) << 20,
  });
  const ram = totalmem();
  return {
    kind: 'seesaw-profile',
    measuredAt: new Date().toISOString(),
    name: `this machine (${devices} device workers x ${threads} threads)`,
    numHosts: 1,
    devicesPerHost: devices,
    device: {
      name: `cpu-${threads}t`,
      memoryBytes: options.deviceMemoryBytes ?? Math.floor(ram / 2 / devices),
      memoryBytesPerSecond: weightBytesPerSecond,
      matmulFlopsPerSecond: flopsPerSecond,
      matmulEfficiency: 1,
      memoryEfficiency: 1,
      attentionEfficiency: Math.min(1, attentionFlops / flopsPerSecond),
      memoryUtilization: 1,
      activationReserveBytes: 0,
      // A decode step's fixed cost outside the kernels: its step / stepDone round trip to a
      // device worker at a decode batch's size (sampling is per logit, in sampleSecondsPerLogit).
      stepOverheadSeconds: messaging.batchSeconds,
      sampleSecondsPerLogit,
      cpuKernels: { ...kernelProfile(rowCounts, kernels), alone: kernelProfile(rowCounts, alone) },
      // The CPU engine computes in f32 and its paged KV cache and host store hold f32.
      computeBytesPerElement: 4,
      hostLink: copy,
      kvTransferLink: kvStoreCopy,
      reshardHostLink,
      reshardWeightAssembly,
      kvFirstTouchBytesPerSecond,
    },
    intraHostLink: allReduce,
    interHostLink: { bytesPerSecond: 1e9, latencySeconds: 100e-6 },
    reshardPeerLink,
    hostMemoryBytesPerDevice: options.hostMemoryBytesPerDevice ?? Math.floor(ram / 4 / devices),
    measurements: {
      threadsPerDevice: threads,
      matmulGflops: flopsPerSecond / 1e9,
      weightStreamGBps: weightBytesPerSecond / 1e9,
      attentionGflops: attentionFlops / 1e9,
      sampleNanosPerLogit: sampleSecondsPerLogit * 1e9,
      soloSampleNanosPerLogit: soloSampleSecondsPerLogit * 1e9,
      ...Object.fromEntries(
        rowCounts.map((rows, i) => [
          `matmulGflopsAt${rows}Rows`,
          2 / kernels.matmulSecondsPerRowParam[i] / 1e9,
        ]),
      ),
      elementwiseNanosPerElement: kernels.elementwiseSecondsPerElement * 1e9,
      ...Object.fromEntries(
        rowCounts.map((rows, i) => [
          `aloneMatmulGflopsAt${rows}Rows`,
          2 / alone.matmulSecondsPerRowParam[i] / 1e9,
        ]),
      ),
      aloneSampleNanosPerLogit: alone.sampleSecondsPerLogit * 1e9,
      decodeAttentionGflops: kernels.decodeAttentionFlopsPerSecond / 1e9,
      prefillAttentionGflops: kernels.prefillAttentionFlopsPerSecond / 1e9,
      copyGBps: copy.bytesPerSecond / 1e9,
      allReduceGBps: allReduce.bytesPerSecond / 1e9,
      allReduceLatencyMicros: allReduce.latencySeconds * 1e6,
      allReduceBackToBackLatencyMicros: backToBack.latencySeconds * 1e6,
      allReduceInComputeMicros: inCompute * 1e6,
      reshardPeerGBps: reshardPeerLink.bytesPerSecond / 1e9,
      reshardHostReadGBps: reshardHostLink.bytesPerSecond / 1e9,
      reshardAssemblyGBps: reshardWeightAssembly.bytesPerSecond / 1e9,
      kvFirstTouchGBps: kvFirstTouchBytesPerSecond / 1e9,
      kvStoreCopyGBps: kvStoreCopy.bytesPerSecond / 1e9,
      kvStoreCopyLatencyMicros: kvStoreCopy.latencySeconds * 1e6,
      stepRoundTripMicrosOneSeq: messaging.oneSeqSeconds * 1e6,
      [`stepRoundTripMicros${messaging.batchSeqs}Seqs`]: messaging.batchSeconds * 1e6,
    },
  };
}
