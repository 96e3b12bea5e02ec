/**
 * How a LocalCluster fails: a hello with the wrong token is refused, a killed or silent device
 * is reported as DeviceLostError naming it within a few seconds and the run stops with that
 * error, a device whose weights do not fit reports outOfMemory, and a configuration the model
 * cannot be split by is refused before any worker starts. (Re-queueing a lost device's work or
 * re-planning around it is not implemented.)
 */
import { once } from 'node:events';
import {
  ClusterEngine,
  DeviceActorHandle,
  DeviceLostError,
  DeviceStepError,
  type LocalCluster,
} from '@seesaw/coordinator';
import { deviceWorkerUrl } from '@seesaw/gpu-actor';
import { ParallelConfigError } from '@seesaw/model';
import {
  type CoordinatorToDevice,
  connectAndHello,
  type DeviceToCoordinator,
  HandshakeError,
  spawnWorkerEndpoint,
} from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { ENGINE_OPTIONS, FIXTURE, makeRequests, startCluster, TOKEN } from './cluster-test-support.ts';

/** Steps the engine until it throws; returns the error and when it was thrown. */
async function stepUntilFailure(engine: ClusterEngine): Promise<{ error: unknown; atMs: number }> {
  try {
    while (engine.hasUnfinishedRequests()) await engine.step();
  } catch (error) {
    return { error, atMs: performance.now() };
  }
  throw new Error('the run finished without an error');
}

async function killMidRun(cluster: LocalCluster, victim: number): Promise<void> {
  const engine = new ClusterEngine(cluster.replicas, cluster.parallel.pp, {
    ...ENGINE_OPTIONS,
    maxModelLen: cluster.config.maxPositionEmbeddings,
    eosTokenIds: cluster.config.eosTokenIds,
  });
  for (const request of makeRequests(cluster.config.vocabSize)) engine.addRequest(request);
  await engine.step();
  await engine.step();
  const killedAtMs = performance.now();
  await cluster.actors[victim].worker.terminate();
  const { error, atMs } = await stepUntilFailure(engine);
  expect(error).toBeInstanceOf(DeviceLostError);
  expect((error as DeviceLostError).deviceName).toMatch(new RegExp(`^device ${victim} `));
  expect((error as Error).message).toContain(`device ${victim} (`);
  expect(atMs - killedAtMs).toBeLessThan(3000);
  // The run stays stopped with the same error.
  await expect(engine.step()).rejects.toBe(error);
  const closeStartMs = performance.now();
  await cluster.close({ mode: 'abort' });
  expect(performance.now() - closeStartMs).toBeLessThan(3000);
}

describe('LocalCluster failures', () => {
  it('refuses a hello with the wrong token, and the worker exits', async () => {
    const { worker, endpoint } = spawnWorkerEndpoint<CoordinatorToDevice, DeviceToCoordinator>(
      deviceWorkerUrl(),
      {
        workerData: { token: TOKEN, deviceName: 'device 0 (dp 0, pp 0, tp 0)' },
        log: () => {},
      },
    );
    worker.postMessage({ seesawLinks: {} });
    const exited = once(worker, 'exit');
    const hello = connectAndHello(endpoint, {
      role: 'coordinator',
      name: 'intruder',
      token: 'not the token',
    });
    await expect(hello).rejects.toBeInstanceOf(HandshakeError);
    await expect(hello).rejects.toMatchObject({ isRefused: true, reason: 'wrong token' });
    await exited;
  });

  it('reports a terminated pipeline stage as DeviceLostError naming it (P2)', async () => {
    await killMidRun(await startCluster(FIXTURE, 'P2'), 1);
  });

  it('reports a terminated TP rank as DeviceLostError naming it, and aborts its blocked peer (T2)', async () => {
    await killMidRun(await startCluster(FIXTURE, 'T2'), 1);
  });

  it('fails the replica with the stage error naming the device when a step cannot run (P2)', async () => {
    const cluster = await startCluster(FIXTURE, 'P2');
    try {
      const [replica] = cluster.replicas;
      const badToken = cluster.config.vocabSize + 5;
      const step = replica.execute({
        stepId: 0,
        addedSeqs: [{ seqId: 0, sampling: { temperature: 0, topP: 1, topK: 0, seed: 0 } }],
        releasedSeqIds: [],
        seqs: [
          {
            seqId: 0,
            tokenIds: [1, badToken],
            startPos: 0,
            blockTable: [0],
            isSampled: true,
            outputIndex: 0,
          },
        ],
      });
      await expect(step).rejects.toBeInstanceOf(DeviceStepError);
      await expect(step).rejects.toMatchObject({ code: 'stepFailed', stepId: 0 });
      await expect(step).rejects.toThrow(/^device 0 \(dp 0, pp 0, tp 0\): stepFailed in step 0: .*\d+/);
      // Every later step is refused with the same failure.
      await expect(replica.execute({ stepId: 1, addedSeqs: [], releasedSeqIds: [], seqs: [] })).rejects.toBe(
        replica.failure,
      );
    } finally {
      await cluster.close({ mode: 'abort' });
    }
  });

  it('reports a device that stops answering heartbeats as lost', async () => {
    const actor = await DeviceActorHandle.spawn({
      workerUrl: new URL('./silent-device-worker.ts', import.meta.url),
      name: 'device 7 (dp 0, pp 0, tp 0)',
      workerData: { token: TOKEN, deviceName: 'device 7 (dp 0, pp 0, tp 0)' },
      heartbeatIntervalMs: 100,
      heartbeatTimeoutMs: 800,
    });
    try {
      await actor.load({
        modelDir: FIXTURE,
        parallelism: 'D1T1P1',
        dpRank: 0,
        tpRank: 0,
        ppStage: 0,
        layers: { start: 0, end: 4 },
        numThreads: 1,
        deviceMemoryBytes: 1 << 20,
        blockSize: 8,
      });
      const startMs = performance.now();
      const step = actor.expectStep(0);
      actor.postStep({ stepId: 0, addedSeqs: [], releasedSeqIds: [], seqs: [] });
      const error = await step.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DeviceLostError);
      expect((error as Error).message).toMatch(/^device 7 .*lost: no answer for \d+ ms/);
      expect(performance.now() - startMs).toBeLessThan(2500);
    } finally {
      await actor.close('abort');
    }
  });

  it('fails to start with outOfMemory when the weights do not fit the device memory', async () => {
    const start = startCluster(FIXTURE, 'T2', { deviceMemoryBytes: 1 << 20 });
    await expect(start).rejects.toBeInstanceOf(DeviceStepError);
    await expect(start).rejects.toMatchObject({ code: 'outOfMemory' });
    await expect(start).rejects.toThrow(
      /^device [01] \(dp 0, pp 0, tp [01]\): outOfMemory: weights of \d+ bytes/,
    );
  });

  it('closes in drain mode with every worker exiting on its own (exit code 0)', async () => {
    const cluster = await startCluster(FIXTURE, 'T2P2');
    const exitCodes = Promise.all(cluster.actors.map((actor) => once(actor.worker, 'exit')));
    const startMs = performance.now();
    await cluster.close({ mode: 'drain' });
    expect((await exitCodes).map(([code]) => code)).toEqual([0, 0, 0, 0]);
    expect(performance.now() - startMs).toBeLessThan(2000);
  });

  it('refuses a configuration the model does not divide by, before starting workers', async () => {
    await expect(startCluster(FIXTURE, 'T3')).rejects.toBeInstanceOf(ParallelConfigError);
    await expect(startCluster(FIXTURE, 'P5')).rejects.toThrow(/PP 5 is more than the model's 4 layers/);
  });
});
