/**
 * ClusterEngine when a replica loses a device: its unfinished requests rerun on the survivors
 * from their prompts with the same tokens; losing the last replica hands the unfinished ones back
 * in ReplicasLostError; other failures stop the run as before.
 */
import type { StepBatch, StepResult } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { HashingTestDevice } from '../../test/hashing-test-device.ts';
import type { ExecutionDevice } from '../engine.ts';
import { Engine } from '../engine.ts';
import type { EngineRequest, RequestOutput } from '../request.ts';
import { DEFAULT_SAMPLING } from '../sampling-params.ts';
import { ClusterEngine } from './cluster-engine.ts';
import { DeviceLostError, DeviceStepError } from './device-errors.ts';
import { ReplicasLostError } from './recovery-errors.ts';

const BLOCK_SIZE = 4;
const VOCAB = 1000;
const OPTIONS = { maxModelLen: 256, eosTokenIds: [7], maxNumBatchedTokens: 24, maxNumSeqs: 6 };

/** A replica that fails like ReplicaDevice: from its Nth step on, every step rejects with `error`. */
class FailingReplica implements ExecutionDevice {
  readonly inner: HashingTestDevice;
  numSteps = 0;
  addedSeeds: Array<number | null> = [];
  constructor(
    private readonly failAtStep: number,
    private readonly error: Error,
    numKvBlocks = 200,
  ) {
    this.inner = new HashingTestDevice({
      numKvBlocks,
      blockSize: BLOCK_SIZE,
      vocabSize: VOCAB,
      onBatch: (batch) => this.addedSeeds.push(...batch.addedSeqs.map((added) => added.sampling.seed)),
    });
  }
  get numKvBlocks(): number {
    return this.inner.numKvBlocks;
  }
  get blockSize(): number {
    return this.inner.blockSize;
  }
  async execute(batch: StepBatch): Promise<StepResult> {
    if (this.numSteps++ >= this.failAtStep) throw this.error;
    return this.inner.execute(batch);
  }
}

function makeRequests(count: number, seed: number): EngineRequest[] {
  let state = seed;
  const next = (n: number) => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state % n;
  };
  return Array.from({ length: count }, (_, i) => ({
    requestId: `r${i}`,
    promptTokenIds: Array.from({ length: 1 + next(40) }, () => 10 + next(VOCAB - 10)),
    sampling: { ...DEFAULT_SAMPLING, maxTokens: 1 + next(20), temperature: i % 3 === 0 ? 0.7 : 0, seed: i },
  }));
}

async function runSingle(requests: EngineRequest[]): Promise<Map<string, number[]>> {
  const engine = new Engine(
    new HashingTestDevice({ numKvBlocks: 400, blockSize: BLOCK_SIZE, vocabSize: VOCAB }),
    OPTIONS,
  );
  for (const request of requests) engine.addRequest(request);
  const outputs = new Map<string, number[]>();
  await engine.run((output) => outputs.set(output.requestId, output.outputTokenIds));
  return outputs;
}

const lost = (device: number) =>
  new DeviceLostError(`device ${device} (dp ${device}, pp 0, tp 0)`, 'worker exited');

describe('ClusterEngine with a lost replica', () => {
  it.each([
    [2, 1],
    [2, 2],
    [3, 2],
  ])('with %i replicas x %i virtual engines requeues and gives the single engine outputs', async (dp, pp) => {
    const requests = makeRequests(24, dp * 10 + pp);
    const expected = await runSingle(requests);
    // Replica 1 is lost at its 4th step, mid-run, with requests running and waiting on it.
    const replicas = Array.from(
      { length: dp },
      (_, r) => new FailingReplica(r === 1 ? 3 : Infinity, lost(r)),
    );
    const lines: string[] = [];
    let stepsAtLoss = -1;
    const log = (line: string) => {
      lines.push(line);
      stepsAtLoss = replicas[1].numSteps;
    };
    const engine = new ClusterEngine(replicas, pp, { ...OPTIONS, log });
    for (const request of requests) engine.addRequest(request);
    const finished: RequestOutput[] = [];
    await engine.run((output) => finished.push(output));

    expect(finished.map((o) => o.requestId).sort()).toEqual(requests.map((r) => r.requestId).sort());
    for (const output of finished) expect(output.outputTokenIds).toEqual(expected.get(output.requestId));
    expect(engine.numLiveReplicas).toBe(dp - 1);
    expect(engine.lostDevices).toEqual(['device 1 (dp 1, pp 0, tp 0)']);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^device 1 \(dp 1, pp 0, tp 0\) lost: worker exited: replica 1 stopped; requeued \d+ unfinished requests onto \d surviving replicas?$/,
    );
    const numRequeued = Number(/requeued (\d+)/.exec(lines[0])![1]);
    expect(numRequeued).toBeGreaterThan(0);
    // No step is started on it after the loss (its other partitions may have had one in flight).
    expect(replicas[1].numSteps).toBe(stepsAtLoss);
    expect(stepsAtLoss).toBeLessThanOrEqual(3 + pp);
    expect(engine.hasUnfinishedRequests()).toBe(false);
  });

  it('hands every unfinished request back in ReplicasLostError when the last replica is lost', async () => {
    const requests = makeRequests(10, 5);
    const engine = new ClusterEngine([new FailingReplica(4, lost(0))], 1, OPTIONS);
    for (const request of requests) engine.addRequest(request);
    const finished: string[] = [];
    let error: unknown;
    try {
      while (engine.hasUnfinishedRequests())
        for (const output of await engine.step()) finished.push(output.requestId);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ReplicasLostError);
    const replicasLost = error as ReplicasLostError;
    expect(replicasLost.lostDevices).toEqual(['device 0 (dp 0, pp 0, tp 0)']);
    expect(replicasLost.lastLoss).toBeInstanceOf(DeviceLostError);
    // A caller that does not re-plan sees it as the device loss that stopped the run.
    expect(replicasLost).toBeInstanceOf(DeviceLostError);
    expect(replicasLost.deviceName).toBe('device 0 (dp 0, pp 0, tp 0)');
    expect(replicasLost.message).toMatch(
      /^every replica lost a device \(device 0 \(dp 0, pp 0, tp 0\)\), last device 0 .* lost: worker exited; \d+ unfinished requests?$/,
    );
    const unfinishedIds = replicasLost.unfinishedRequests.map((r) => r.requestId);
    expect([...unfinishedIds, ...finished].sort()).toEqual(requests.map((r) => r.requestId).sort());
    expect(unfinishedIds.length).toBeGreaterThan(0);
    // Handed back exactly as added.
    for (const request of replicasLost.unfinishedRequests) {
      expect(request).toEqual(requests.find((r) => r.requestId === request.requestId));
    }
    expect(engine.hasUnfinishedRequests()).toBe(true);
    await expect(engine.step()).rejects.toBe(error);
  });

  it('does not requeue after a step error that is not a lost device', async () => {
    const stepError = new DeviceStepError('device 1 (dp 1, pp 0, tp 0)', 'stepFailed', 'bad token', 2);
    const replicas = [new FailingReplica(Infinity, lost(0)), new FailingReplica(2, stepError)];
    const engine = new ClusterEngine(replicas, 1, OPTIONS);
    for (const request of makeRequests(10, 9)) engine.addRequest(request);
    await expect(engine.run()).rejects.toBe(stepError);
    await expect(engine.step()).rejects.toBe(stepError);
    expect(engine.numLiveReplicas).toBe(2);
  });

  it('resolves a null seed once, so the rerun of a requeued request samples with the same seed', async () => {
    const replicas = [new FailingReplica(2, lost(0)), new FailingReplica(Infinity, lost(1))];
    const engine = new ClusterEngine(replicas, 1, OPTIONS);
    engine.addRequest({
      requestId: 'random',
      promptTokenIds: [11, 12, 13],
      // ignoreEos: the seed is drawn at random, and with it the output (a 1-in-1000 eos a token).
      sampling: { ...DEFAULT_SAMPLING, maxTokens: 6, temperature: 1, seed: null, ignoreEos: true },
    });
    const finished: RequestOutput[] = [];
    await engine.run((output) => finished.push(output));
    expect(finished.map((o) => o.outputTokenIds.length)).toEqual([6]);
    const [firstSeed] = replicas[0].addedSeeds;
    expect(typeof firstSeed).toBe('number');
    expect(replicas[1].addedSeeds).toEqual([firstSeed]);
  });
});
