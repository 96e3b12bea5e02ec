/**
 * ReplicaDevice over scripted actors (no workers): which actor answers in each layout,
 * the switch barrier, what each device is sent, the figures and log line of a switch, host
 * slot ranges, and failure. The planner is the real one, on the tiny fixture's header.
 */
import { join } from 'node:path';
import { loadModelConfig, type ParallelConfig, parseParallelConfig } from '@seesaw/model';
import type { Reshard, ReshardDone, StepBatch, StepKvSwap, StepResult } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { DeviceLostError, DeviceStepError } from './device-errors.ts';
import type { ReplicaActor } from './replica-actor.ts';
import { ReplicaDevice } from './replica-device.ts';
import type { ReplicaDeviceOptions } from './replica-device-options.ts';
import { checkpointTensorBytes, createReshardPlanner } from './reshard-planner.ts';

const FIXTURE = join(import.meta.dirname, '../../../../fixtures/tiny-llama-bf16');
const config = loadModelConfig(FIXTURE);
const tensorBytes = checkpointTensorBytes(FIXTURE);

class ScriptedActor implements ReplicaActor {
  readonly posted: StepBatch[] = [];
  readonly reshards: Array<Omit<Reshard, 'tag'>> = [];
  private readonly answers = new Map<number, (result: StepResult) => void>();
  private failureListener: ((error: Error) => void) | undefined;
  /** What the next reshardDone reports; resolved by the test through finishReshard, or at once. */
  doneFigures = { numKvBlocks: 10, bytesReceived: 0, bytesFromHost: 0 };
  isReshardHeld = false;
  private heldReshard: (() => void) | undefined;

  constructor(readonly name: string) {}

  postStep(batch: StepBatch): void {
    this.posted.push(batch);
  }

  expectStep(stepId: number): Promise<StepResult> {
    return new Promise((resolve) => this.answers.set(stepId, resolve));
  }

  answer(stepId: number): void {
    this.answers.get(stepId)!({ stepId, sampled: [] });
  }

  get awaited(): number[] {
    return [...this.answers.keys()];
  }

  reshard(message: Omit<Reshard, 'tag'>): Promise<ReshardDone> {
    this.reshards.push(message);
    const plan = message.plan;
    const done: ReshardDone = {
      tag: 'reshardDone',
      reshardId: message.reshardId,
      numKvBlocks: this.doneFigures.numKvBlocks,
      weightBytes: plan.bytesKept + plan.bytesReceived + plan.bytesFromHost,
      kvCacheBytes: 1000,
      bytesKept: plan.bytesKept,
      bytesReceived: this.doneFigures.bytesReceived,
      bytesSent: plan.bytesSent,
      bytesFromHost: this.doneFigures.bytesFromHost,
      peakWeightBytes: plan.peakWeightBytes,
      ms: 1,
    };
    if (!this.isReshardHeld) return Promise.resolve(done);
    return new Promise((resolve) => {
      this.heldReshard = () => resolve(done);
    });
  }

  releaseReshard(): void {
    this.heldReshard?.();
  }

  onFailure(listener: (error: Error) => void): void {
    this.failureListener = listener;
  }

  failWith(error: Error): void {
    this.failureListener?.(error);
  }
}

function replicaOf(
  prefill: string,
  decode: string,
  extra: Partial<ReplicaDeviceOptions> = {},
): { replica: ReplicaDevice; actors: ScriptedActor[]; lines: string[] } {
  const layouts: [ParallelConfig, ParallelConfig] = [
    parseParallelConfig(prefill),
    parseParallelConfig(decode),
  ];
  const n = layouts[0].tp * layouts[0].pp;
  const actors = Array.from({ length: n }, (_, i) => new ScriptedActor(`device ${i}`));
  const lines: string[] = [];
  const replica = new ReplicaDevice({
    dpRank: 0,
    actors,
    layouts,
    ready: actors.map((_, i) => ({
      tag: 'ready',
      numKvBlocks: 20 + i,
      weightBytes: 100,
      kvCacheBytes: 1000,
    })),
    blockSize: 8,
    planner: createReshardPlanner(config, tensorBytes, { route: 'p2p' }),
    log: (line) => lines.push(line),
    ...extra,
  });
  return { replica, actors, lines };
}

function step(stepId: number, swaps: Partial<Pick<StepBatch, 'swapOuts' | 'swapIns'>> = {}): StepBatch {
  return { stepId, addedSeqs: [], releasedSeqIds: [], seqs: [], ...swaps };
}

/** Sends one step and answers it from the actor that awaits it; returns that actor's index. */
async function runOneStep(replica: ReplicaDevice, actors: ScriptedActor[], stepId: number) {
  const result = replica.execute(step(stepId));
  const answering = actors.findIndex((actor) => actor.awaited.includes(stepId));
  actors[answering].answer(stepId);
  await result;
  return answering;
}

describe('ReplicaDevice', () => {
  it('with one layout is a static replica: the last stage answers, a switch is refused', async () => {
    const layout = parseParallelConfig('T2P2');
    const actors = Array.from({ length: 4 }, (_, i) => new ScriptedActor(`device ${i}`));
    const replica = new ReplicaDevice({
      dpRank: 1,
      actors,
      layouts: [layout],
      ready: actors.map((_, i) => ({
        tag: 'ready',
        numKvBlocks: 30 - i,
        weightBytes: 100,
        kvCacheBytes: 1000,
      })),
      blockSize: 8,
    });
    expect(replica.maxInFlight).toBe(2);
    expect(replica.numKvBlocks).toBe(27);
    expect(replica.weightBytes).toBe(400);
    expect(await runOneStep(replica, actors, 0)).toBe(2);
    await expect(replica.switchTo('decode')).rejects.toThrow(/replica 1 has one layout \(T2P2\): no switch/);
    expect(actors.every((actor) => actor.reshards.length === 0)).toBe(true);
    expect(
      () =>
        new ReplicaDevice({
          dpRank: 0,
          actors,
          layouts: [parseParallelConfig('T2')],
          ready: [],
          blockSize: 8,
        }),
    ).toThrow(/layout T2 must span the replica's 4 devices/);
    expect(
      () =>
        new ReplicaDevice({
          dpRank: 0,
          actors,
          layouts: [layout, parseParallelConfig('P4')],
          ready: [],
          blockSize: 8,
        }),
    ).toThrow(/needs a re-shard planner/);
  });

  it('routes steps to every actor and takes the answer from the layout last stage TP rank 0', async () => {
    // T2P2: stage 1 TP rank 0 is local device 2; T4: stage 0 TP rank 0 is device 0; P4: device 3.
    const { replica, actors } = replicaOf('T2P2', 'P4');
    expect(replica.phase).toBe('prefill');
    expect(replica.maxInFlight).toBe(2);
    expect(replica.numKvBlocks).toBe(20);
    expect(await runOneStep(replica, actors, 0)).toBe(2);
    for (const actor of actors) expect(actor.posted.map((b) => b.stepId)).toEqual([0]);
    await replica.switchTo('decode');
    expect(replica.maxInFlight).toBe(4);
    expect(await runOneStep(replica, actors, 1)).toBe(3);
    for (const actor of actors) expect(actor.posted.map((b) => b.stepId)).toEqual([0, 1]);
    const { replica: t4, actors: t4Actors } = replicaOf('P4', 'T4');
    expect(await runOneStep(t4, t4Actors, 0)).toBe(3);
    await t4.switchTo('decode');
    expect(t4.maxInFlight).toBe(1);
    expect(await runOneStep(t4, t4Actors, 1)).toBe(0);
  });

  it('switches only when no step is in flight, sending each device its own part of the plan', async () => {
    const { replica, actors, lines } = replicaOf('P2', 'T2');
    const inFlight = replica.execute(step(5));
    await expect(replica.switchTo('decode')).rejects.toThrow(/1 step\(s\) in flight/);
    actors[1].answer(5);
    await inFlight;
    actors[0].doneFigures = { numKvBlocks: 7, bytesReceived: 3 << 20, bytesFromHost: 0 };
    actors[1].doneFigures = { numKvBlocks: 9, bytesReceived: 1 << 20, bytesFromHost: 1024 };
    const stats = await replica.switchTo('decode');
    for (const [i, actor] of actors.entries()) {
      expect(actor.reshards).toHaveLength(1);
      expect(actor.reshards[0].layout).toBe(1);
      expect(actor.reshards[0].plan.device).toBe(i);
      expect(actor.reshards[0].plan.to).toEqual({ tp: 2, tpRank: i, pp: 1, ppStage: 0 });
      expect(actor.reshards[0].isWeightDigestReturned).toBeUndefined();
    }
    expect(replica.phase).toBe('decode');
    expect(replica.numKvBlocks).toBe(7);
    expect(stats).toMatchObject({
      bytesMoved: (4 << 20) + 1024,
      bytesFromHost: 1024,
      bytesFromPeers: 4 << 20,
      numKvBlocks: 7,
      route: 'p2p',
    });
    expect(stats.devices.map((d) => d.numKvBlocks)).toEqual([7, 9]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^reshard prefill P2 -> decode T2: 4\.0 MiB moved \(p2p 4\.0 MiB, host 1\.0 KiB\) in \d+ ms$/,
    );

    const back = await replica.switchTo('prefill');
    expect(back.from).toEqual({ dp: 1, tp: 2, pp: 1 });
    expect(actors[0].reshards[1].layout).toBe(0);
    expect(actors[0].reshards[1].reshardId).not.toBe(actors[0].reshards[0].reshardId);
    expect(lines[1]).toMatch(/^reshard decode T2 -> prefill P2: /);
    await expect(replica.switchTo('prefill')).rejects.toThrow(/in the prefill layout already/);
  });

  it('refuses steps while a switch is under way', async () => {
    const { replica, actors } = replicaOf('P2', 'T2');
    actors[1].isReshardHeld = true;
    const switching = replica.switchTo('decode');
    await expect(replica.execute(step(0))).rejects.toThrow(/while replica 0 re-shards/);
    await expect(replica.switchTo('decode')).rejects.toThrow(/re-sharding already/);
    actors[1].releaseReshard();
    await switching;
    expect(replica.phase).toBe('decode');
  });

  it("moves every swap's host slots into the replica's range and refuses slots outside it", async () => {
    const { replica, actors } = replicaOf('P2', 'T2', { hostSlots: { numSlots: 10, slotOffset: 30 } });
    const swap: StepKvSwap = { seqId: 1, blockIds: [4, 5], slotIds: [0, 9], numTokens: 12 };
    const batch: StepBatch = {
      ...step(0),
      swapOuts: [swap],
      swapIns: [swap],
      kvWriteBacks: [swap],
      prefetches: [swap],
    };
    const result = replica.execute(batch);
    actors[1].answer(0);
    await result;
    const sent = actors[0].posted[0];
    for (const list of [sent.swapOuts, sent.swapIns, sent.kvWriteBacks, sent.prefetches])
      expect(list).toEqual([{ ...swap, slotIds: [30, 39] }]);
    expect(batch.swapOuts![0].slotIds).toEqual([0, 9]);
    await expect(replica.execute(step(1, { swapIns: [{ ...swap, slotIds: [10] }] }))).rejects.toThrow(
      /host slot 10 is outside replica 0's 10 slots/,
    );
  });

  it("fails pending steps and later switches with the first actor's loss", async () => {
    const { replica, actors } = replicaOf('P2', 'T2');
    const pending = replica.execute(step(0));
    const lost = new DeviceLostError('device 0', 'worker exited');
    actors[0].failWith(lost);
    await expect(pending).rejects.toBe(lost);
    await expect(replica.switchTo('decode')).rejects.toBe(lost);
    await expect(replica.execute(step(1))).rejects.toBe(lost);
    expect(replica.failure).toBe(lost);
  });

  it("fails with a loss that follows another device's step failure within the grace (a closed peer link)", async () => {
    const { replica, actors } = replicaOf('P2', 'T2');
    const pending = replica.execute(step(0));
    const answered = replica.execute(step(1));
    actors[1].failWith(new DeviceStepError('device 1', 'stepFailed', 'link to the previous stage closed'));
    // An answer that arrives after a device failed does not count: the failure settles every step.
    actors[1].answer(1);
    const lost = new DeviceLostError('device 0', 'worker exited');
    setTimeout(() => actors[0].failWith(lost), 20);
    await expect(pending).rejects.toBe(lost);
    await expect(answered).rejects.toBe(lost);
    expect(replica.failure).toBe(lost);
  });

  it('fails with a step failure no loss explains once the grace is over', async () => {
    const { replica, actors } = replicaOf('P2', 'T2');
    const pending = replica.execute(step(0));
    const failed = new DeviceStepError('device 1', 'outOfMemory', 'no memory');
    actors[1].failWith(failed);
    await expect(pending).rejects.toBe(failed);
    await expect(replica.switchTo('decode')).rejects.toBe(failed);
  });

  it('rejects layouts that do not span the same devices', () => {
    expect(() => replicaOf('P2', 'T4')).toThrow(/must both span the replica's 2 devices/);
  });
});

describe('createReshardPlanner', () => {
  it('plans with the given route, once per direction, and refuses plans that do not fit memory', () => {
    const [p2, t2] = ['P2', 'T2'].map(parseParallelConfig);
    const host = createReshardPlanner(config, tensorBytes, { route: 'host' });
    const plan = host(p2, t2);
    expect(host(p2, t2)).toBe(plan);
    expect(plan.route).toBe('host');
    for (const device of plan.devices) {
      expect(device.pieces.every((piece) => piece.source.kind !== 'peer')).toBe(true);
      expect(device.bytesFromHost).toBeGreaterThan(0);
    }
    const p2p = createReshardPlanner(config, tensorBytes, { route: 'p2p' })(p2, t2);
    expect(p2p.devices.every((device) => device.bytesFromHost === 0)).toBe(true);
    expect(p2p.bytesMoved).toBe(plan.bytesMoved);
    const auto = createReshardPlanner(config, tensorBytes)(p2, t2);
    expect(auto.route).toBe('auto');
    const tight = createReshardPlanner(config, tensorBytes, { deviceMemoryBytes: 1 << 20 });
    expect(() => tight(p2, t2)).toThrow(/peak|memory/i);
  });

  it('reads element sizes and shapes from the checkpoint header', () => {
    const embedding = tensorBytes('model.embed_tokens.weight');
    expect(embedding).toEqual({ dtypeBytes: 2, shape: [config.vocabSize, config.hiddenSize] });
    expect(() => tensorBytes('no.such.tensor')).toThrow(/has no tensor "no.such.tensor"/);
  });
});
