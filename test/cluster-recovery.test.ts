/**
 * Lost devices in a real LocalCluster (worker threads on the tiny fixture): a D2 replica's worker
 * terminated mid-run has its requests finished by the other replica; a T2 rank or P2 stage
 * terminated leaves no replica, so the run is re-planned onto the surviving device (D1); a D1
 * device terminated leaves nothing valid and the run stops naming it. Greedy outputs must equal
 * one in-process CpuDevice's, and requests finished before the loss must come out once, unchanged.
 */
import {
  ClusterStoppedError,
  type EngineRequest,
  RecoveringCluster,
  type RequestOutput,
} from '@seesaw/coordinator';
import { createDeviceWorkerGroup, deviceWorkerUrl } from '@seesaw/gpu-actor';
import { loadModelConfig } from '@seesaw/model';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BLOCK_SIZE,
  DEVICE_MEMORY_BYTES,
  ENGINE_OPTIONS,
  FIXTURE,
  makeRequests,
  runReference,
  TOKEN,
} from './cluster-test-support.ts';

function startRecovering(
  parallel: string,
  log: string[],
  deviceMemoryBytes = DEVICE_MEMORY_BYTES,
): Promise<RecoveringCluster> {
  return RecoveringCluster.start({
    cluster: {
      workerUrl: deviceWorkerUrl(),
      modelDir: FIXTURE,
      parallel,
      numThreadsPerDevice: 1,
      deviceMemoryBytes,
      blockSize: BLOCK_SIZE,
      token: TOKEN,
      createTpGroup: createDeviceWorkerGroup,
      groupTimeoutMs: 20_000,
      log: (line) => {
        if (!line.includes('accepted')) log.push(line);
      },
    },
    engine: ENGINE_OPTIONS,
    log: (line) => log.push(line),
  });
}

/**
 * Steps until `isTimeToKill` holds, terminates the worker of `victim` (a device index of the
 * cluster running then), then runs to the end. Returns every output in finishing order and
 * copies of those finished before the kill.
 */
async function runWithKill(
  recovering: RecoveringCluster,
  requests: EngineRequest[],
  victim: number,
  isTimeToKill: (finished: RequestOutput[]) => boolean,
): Promise<{ finished: RequestOutput[]; beforeKill: RequestOutput[] }> {
  for (const request of requests) recovering.addRequest(request);
  const finished: RequestOutput[] = [];
  while (!isTimeToKill(finished)) {
    expect(recovering.hasUnfinishedRequests()).toBe(true);
    finished.push(...(await recovering.step()));
  }
  const beforeKill = structuredClone(finished);
  await recovering.cluster.actors[victim].worker.terminate();
  await recovering.run((output) => finished.push(output));
  return { finished, beforeKill };
}

function expectAllFinishedAsReference(
  finished: RequestOutput[],
  beforeKill: RequestOutput[],
  requests: EngineRequest[],
  reference: Map<string, number[]>,
): void {
  expect(finished.map((o) => o.requestId).sort()).toEqual(requests.map((r) => r.requestId).sort());
  for (const output of finished) expect(output.outputTokenIds).toEqual(reference.get(output.requestId));
  // Finished before the loss: still first, in the same order, untouched.
  expect(structuredClone(finished.slice(0, beforeKill.length))).toEqual(beforeKill);
}

describe('LocalCluster recovery from lost devices', () => {
  let requests: EngineRequest[];
  let reference: Map<string, number[]>;

  beforeAll(async () => {
    requests = makeRequests(loadModelConfig(FIXTURE).vocabSize, 11);
    reference = await runReference(FIXTURE, requests);
  });

  it('D2: a terminated replica worker has its unfinished requests completed on the other replica', async () => {
    const log: string[] = [];
    const recovering = await startRecovering('D2', log);
    try {
      const [, replica1] = recovering.engine.engines;
      const { finished, beforeKill } = await runWithKill(
        recovering,
        requests,
        1,
        // Something is finished and replica 1 still holds work to requeue.
        (done) => done.length > 0 && replica1.hasUnfinishedRequests(),
      );
      expectAllFinishedAsReference(finished, beforeKill, requests, reference);
      expect(recovering.engine.numLiveReplicas).toBe(1);
      expect(recovering.replans).toEqual([]);
      const requeue = log.find((line) => line.includes('requeued'));
      expect(requeue).toMatch(
        /^device 1 \(dp 1, pp 0, tp 0\) lost: .*: replica 1 stopped; requeued [1-9]\d* unfinished requests? onto 1 surviving replica$/,
      );
    } finally {
      await recovering.close();
    }
  });

  it.each([
    ['T2', 'device 1 (dp 0, pp 0, tp 1)', { dp: 1, tp: 2, pp: 1 }],
    ['P2', 'device 1 (dp 0, pp 1, tp 0)', { dp: 1, tp: 1, pp: 2 }],
  ])(
    '%s: a terminated device leaves no replica, so the run is re-planned onto the surviving one (D1)',
    async (parallel, victimName, from) => {
      const log: string[] = [];
      const recovering = await startRecovering(parallel, log);
      try {
        const { finished, beforeKill } = await runWithKill(
          recovering,
          requests,
          1,
          (done) => done.length > 0,
        );
        expectAllFinishedAsReference(finished, beforeKill, requests, reference);
        // A step already computed when the worker was terminated may still finish a request (its
        // answer was sent before the kill), so up to every request unfinished at the kill is requeued.
        const [replan] = recovering.replans;
        const numRequeued = replan!.numRequeued;
        expect(numRequeued).toBeGreaterThan(0);
        expect(numRequeued).toBeLessThanOrEqual(requests.length - beforeKill.length);
        expect(recovering.replans).toEqual([
          { from, to: { dp: 1, tp: 1, pp: 1 }, numHealthy: 1, numRequeued },
        ]);
        expect(recovering.lostDevices).toEqual([`${victimName} of ${parallel}`]);
        expect(recovering.cluster.name).toBe('D1');
        expect(log).toContain(
          `re-planned ${parallel} -> D1 on 1 healthy device; resuming ${numRequeued} unfinished requests there`,
        );
      } finally {
        await recovering.close();
      }
    },
  );

  it('D1: a terminated device leaves nothing valid, and the run stops naming it', async () => {
    const log: string[] = [];
    const recovering = await startRecovering('D1', log);
    try {
      const startedMs = performance.now();
      let error: unknown;
      try {
        await runWithKill(recovering, requests, 0, (done) => done.length > 0);
      } catch (e) {
        error = e;
      }
      expect(performance.now() - startedMs).toBeLessThan(30_000);
      expect(error).toBeInstanceOf(ClusterStoppedError);
      const stopped = error as ClusterStoppedError;
      expect(stopped.lostDevices).toEqual(['device 0 (dp 0, pp 0, tp 0) of D1']);
      expect(stopped.unfinishedRequestIds.length).toBeGreaterThan(0);
      expect(stopped.message).toMatch(
        /^run stopped: no valid configuration on the 0 healthy devices left; lost device 0 \(dp 0, pp 0, tp 0\) of D1; \d+ requests? did not finish \(r\d/,
      );
      expect(stopped.withPartialOutput('/tmp/out.jsonl', 3).message).toMatch(
        /; the 3 completed results are in \/tmp\/out\.jsonl$/,
      );
      await expect(recovering.step()).rejects.toBe(error);
    } finally {
      await recovering.close();
    }
  });

  it('T2 on devices too small for the whole model: the re-planned D1 does not start, and the run stops', async () => {
    // 8 MiB holds half the 8.4 MB of weights plus KV cache, not all of them.
    const log: string[] = [];
    const recovering = await startRecovering('T2', log, 8 << 20);
    try {
      const error = await runWithKill(recovering, requests, 1, (done) => done.length > 0).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ClusterStoppedError);
      const stopped = error as ClusterStoppedError;
      expect(stopped.lostDevices).toEqual(['device 1 (dp 0, pp 0, tp 1) of T2']);
      expect(stopped.reason).toMatch(/^the re-planned D1 cluster did not start: device 0 .*: outOfMemory: /);
      expect(recovering.replans).toEqual([]);
    } finally {
      await recovering.close();
    }
  });
});
