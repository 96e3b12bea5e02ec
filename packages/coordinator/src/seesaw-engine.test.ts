import type { StepBatch } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { HashingPhasedDevice } from '../test/hashing-phased-device.ts';
import {
  EOS,
  expectSameOutputs,
  outputCollector,
  randomWorkload,
  staticReference,
  VOCAB,
} from '../test/seesaw-test-support.ts';
import type { EngineRequest } from './request.ts';
import { SeesawEngine, type SeesawEngineOptions } from './seesaw-engine.ts';
import type { Phase } from './step-scheduler.ts';
import { TraceRecorder } from './trace-recorder.ts';

// SeesawEngine on the KV-checking hash device, whose switchTo drops every device block: any
// scheduler step that relies on KV surviving a switch, a wrong write-back or prefetch, or a
// sequence in two steps at once changes the tokens or trips the device.

interface Setup {
  blockSize: number;
  numKvBlocks: Record<Phase, number>;
  numHostSlots: number;
  maxInFlight?: Partial<Record<Phase, number>>;
  /** The device queues steps: a pipelined prefill phase keeps pp + 1 in flight. */
  queuesSteps?: boolean;
  options?: Partial<SeesawEngineOptions>;
}

function makeEngine(setup: Setup, maxModelLen: number, onBatch?: (batch: StepBatch) => void) {
  const device = new HashingPhasedDevice({
    blockSize: setup.blockSize,
    numKvBlocks: setup.numKvBlocks,
    numHostSlots: setup.numHostSlots,
    maxInFlight: setup.maxInFlight,
    queuesSteps: setup.queuesSteps,
    vocabSize: VOCAB,
    onBatch,
    kvMsPerToken: 0.001,
  });
  const engine = new SeesawEngine(device, {
    maxModelLen,
    eosTokenIds: [EOS],
    hostKv: { numSlots: setup.numHostSlots, slotBytes: 256 },
    ...setup.options,
  });
  return { device, engine };
}

async function runSeesaw(setup: Setup, requests: readonly EngineRequest[], maxModelLen: number) {
  const { device, engine } = makeEngine(setup, maxModelLen);
  for (const request of requests) engine.addRequest(request);
  const { outputs, onFinished } = outputCollector();
  const stats = await engine.run(onFinished);
  // Nothing left: device blocks, host slots, sequences the device still knows.
  expect(engine.hasUnfinishedRequests()).toBe(false);
  expect(engine.scheduler.allocator.numUsedBlocks).toBe(0);
  expect(engine.scheduler.hostAllocator.numUsedSlots).toBe(0);
  expect(stats.numFinishedRequests).toBe(requests.length);
  expect(stats.numSwitches).toBe(device.switches.length);
  return { outputs, stats, device, engine };
}

const MAX_MODEL_LEN = 350;

/** A fresh seed per run, or SEESAW_SEED to replay a printed one. */
function freshSeed(): number {
  const fixed = process.env.SEESAW_SEED;
  return fixed ? Number(fixed) : (Math.random() * 2 ** 31) >>> 0;
}

describe('SeesawEngine gives the static engine tokens', () => {
  // Prompts 1..300 and up to 40 outputs need up to 339 KV positions: both layouts hold 352 or
  // more, and the host tier (30 slots of 16) only a few prompts at once, so phases alternate.
  const setups: Array<[string, Setup]> = [
    ['one step in flight', { blockSize: 16, numKvBlocks: { prefill: 26, decode: 22 }, numHostSlots: 30 }],
    [
      'pp 2 in both layouts',
      {
        blockSize: 16,
        numKvBlocks: { prefill: 24, decode: 30 },
        numHostSlots: 36,
        maxInFlight: { prefill: 2, decode: 2 },
      },
    ],
    [
      'P2 -> T2 (2 prefill steps in flight, 1 decode), small budget',
      {
        blockSize: 8,
        numKvBlocks: { prefill: 50, decode: 45 },
        numHostSlots: 60,
        maxInFlight: { prefill: 2 },
        options: { maxNumBatchedTokens: 100 },
      },
    ],
    [
      'P2 -> T2 on a device that queues steps (3 prefill steps in flight), small budget',
      {
        blockSize: 8,
        numKvBlocks: { prefill: 50, decode: 45 },
        numHostSlots: 60,
        maxInFlight: { prefill: 2 },
        queuesSteps: true,
        options: { maxNumBatchedTokens: 100 },
      },
    ],
    [
      'T2 -> P2 with a tight decode cache (preemption), watermark 0.2, low mark 0.5',
      {
        blockSize: 16,
        numKvBlocks: { prefill: 23, decode: 23 },
        numHostSlots: 60,
        maxInFlight: { decode: 2 },
        options: { watermark: 0.2, hostLowMark: 0.5, maxNumSeqs: 6 },
      },
    ],
  ];

  for (const [name, setup] of setups) {
    it(`${name}: random workloads`, async () => {
      for (let round = 0; round < 3; round++) {
        const seed = freshSeed();
        console.log(`seesaw equivalence (${name}) seed ${seed}`);
        const requests = randomWorkload(seed, { count: 24, maxPrompt: 300, maxTokens: 40 });
        const expected = await staticReference(requests, MAX_MODEL_LEN);
        const { outputs, stats } = await runSeesaw(setup, requests, MAX_MODEL_LEN);
        expectSameOutputs(outputs, expected);
        expect(stats.numSwitches, `seed ${seed}`).toBeGreaterThan(1);
        expect(stats.numWriteBacks).toBeGreaterThan(0);
      }
    });
  }

  const pressured: Array<[string, Setup]> = [
    [
      'swap',
      { blockSize: 4, numKvBlocks: { prefill: 16, decode: 12 }, numHostSlots: 40, options: { watermark: 0 } },
    ],
    [
      'swap and recompute, 2 steps in flight, budget 7',
      {
        blockSize: 4,
        numKvBlocks: { prefill: 16, decode: 12 },
        numHostSlots: 14,
        maxInFlight: { prefill: 2, decode: 2 },
        options: { maxNumBatchedTokens: 7 },
      },
    ],
    [
      '3 decode steps in flight, low mark 0.6, 5 sequences',
      {
        blockSize: 4,
        numKvBlocks: { prefill: 12, decode: 20 },
        numHostSlots: 12,
        maxInFlight: { decode: 3 },
        options: { hostLowMark: 0.6, maxNumSeqs: 5 },
      },
    ],
  ];
  for (const [name, setup] of pressured) {
    it(`preempts under cache pressure and still matches (${name})`, async () => {
      const seed = freshSeed();
      console.log(`seesaw preemption (${name}) seed ${seed}`);
      // Short prompts, long outputs, caches of 12..20 blocks of 4: sequences outgrow them.
      const requests = randomWorkload(seed, { count: 30, maxPrompt: 12, maxTokens: 40, stopShare: 0.2 });
      const expected = await staticReference(requests, 48);
      const { outputs, stats } = await runSeesaw(setup, requests, 48);
      expectSameOutputs(outputs, expected);
      expect(stats.numPreemptions + stats.numSwitches).toBeGreaterThan(0);
    });
  }

  it('keeps pp + 1 prefill steps in flight on a device that queues steps, pp decode steps', async () => {
    const seed = freshSeed();
    console.log(`seesaw pipeline depth seed ${seed}`);
    const requests = randomWorkload(seed, { count: 24, maxPrompt: 60, maxTokens: 12 });
    const expected = await staticReference(requests, MAX_MODEL_LEN);
    const setup: Setup = {
      blockSize: 8,
      numKvBlocks: { prefill: 200, decode: 200 },
      numHostSlots: 400,
      maxInFlight: { prefill: 2, decode: 2 },
      options: { maxNumBatchedTokens: 64 },
    };
    const queued = await runSeesaw({ ...setup, queuesSteps: true }, requests, MAX_MODEL_LEN);
    expectSameOutputs(queued.outputs, expected);
    expect(queued.device.peakPending).toEqual({ prefill: 3, decode: 2 });
    // A device that does not declare queuesSteps is never sent more than its pp.
    const plain = await runSeesaw(setup, requests, MAX_MODEL_LEN);
    expectSameOutputs(plain.outputs, expected);
    expect(plain.device.peakPending).toEqual({ prefill: 2, decode: 2 });
  });

  it('stops for good when a step fails', async () => {
    const device = new HashingPhasedDevice({
      blockSize: 4,
      numKvBlocks: { prefill: 8, decode: 8 },
      vocabSize: VOCAB,
    });
    const engine = new SeesawEngine(device, {
      maxModelLen: 32,
      eosTokenIds: [EOS],
      hostKv: { numSlots: 8, slotBytes: 64 },
    });
    for (const request of randomWorkload(5, { count: 2, maxPrompt: 8, maxTokens: 4 }))
      engine.addRequest(request);
    device.execute = async () => {
      throw new Error('worker crashed');
    };
    await expect(engine.run()).rejects.toThrow(/worker crashed/);
    await expect(engine.step()).rejects.toThrow(/worker crashed/);
  });

  it("refuses on arrival a request the decode layout's announced cache cannot hold, instead of failing the switch", async () => {
    // 40 tokens of prompt fit the prefill layout's 64 tokens, not the decode layout's 32.
    const [template] = randomWorkload(1, { count: 1, maxPrompt: 4, maxTokens: 2 });
    const long: EngineRequest = {
      ...template!,
      requestId: 'long',
      promptTokenIds: Array.from({ length: 40 }, (_, i) => 1 + (i % 7)),
      sampling: { ...template!.sampling, maxTokens: 2 },
    };
    const short = randomWorkload(3, { count: 2, maxPrompt: 8, maxTokens: 4 });
    const setup = (announcesDecodeKvBlocks: boolean) =>
      new HashingPhasedDevice({
        blockSize: 4,
        numKvBlocks: { prefill: 16, decode: 8 },
        numHostSlots: 32,
        vocabSize: VOCAB,
        announcesDecodeKvBlocks,
      });
    const options = { maxModelLen: 64, eosTokenIds: [EOS], hostKv: { numSlots: 32, slotBytes: 64 } };
    const announced = new SeesawEngine(setup(true), options);
    expect(() => announced.addRequest(long)).toThrow(
      /rejected: needs up to 41 tokens of KV, the decode layout's device cache holds 32/,
    );
    for (const request of short) announced.addRequest(request);
    const { outputs, onFinished } = outputCollector();
    await announced.run(onFinished);
    expect(outputs.size).toBe(2);
    // Not announced: the request is taken, and the switch to decode finds it does not fit.
    const silent = new SeesawEngine(setup(false), options);
    silent.addRequest(long);
    await expect(silent.run()).rejects.toThrow(
      /the decode layout's device cache holds 32 tokens, but request "long"/,
    );
  });

  it('needs a device that starts in the prefill layout', async () => {
    const device = new HashingPhasedDevice({
      blockSize: 4,
      numKvBlocks: { prefill: 8, decode: 8 },
      vocabSize: VOCAB,
    });
    await device.switchTo('decode');
    expect(
      () =>
        new SeesawEngine(device, {
          maxModelLen: 32,
          eosTokenIds: [EOS],
          hostKv: { numSlots: 8, slotBytes: 64 },
        }),
    ).toThrow(/must start in the prefill layout, not decode/);
  });

  it('records steps, re-shards and KV spans on the replica tracks, and times every phase', async () => {
    let now = 0;
    const clock = () => now;
    const trace = new TraceRecorder(clock);
    const requests = randomWorkload(7, { count: 10, maxPrompt: 40, maxTokens: 10 });
    const device = new HashingPhasedDevice({
      blockSize: 4,
      numKvBlocks: { prefill: 40, decode: 40 },
      numHostSlots: 30,
      vocabSize: VOCAB,
      kvMsPerToken: 0.01,
      reshardBytes: 1000,
    });
    const timed = {
      get blockSize() {
        return device.blockSize;
      },
      get numKvBlocks() {
        return device.numKvBlocks;
      },
      get phase() {
        return device.phase;
      },
      get maxInFlight() {
        return device.maxInFlight;
      },
      execute: async (batch: StepBatch) => {
        now += 2;
        return device.execute(batch);
      },
      switchTo: async (phase: Phase) => {
        now += 5;
        return device.switchTo(phase);
      },
    };
    const lines: string[] = [];
    const engine = new SeesawEngine(timed, {
      maxModelLen: 64,
      eosTokenIds: [EOS],
      hostKv: { numSlots: 30, slotBytes: 256 },
      clock,
      trace,
      replicaIndex: 3,
      log: (line) => lines.push(line),
    });
    for (const request of requests) engine.addRequest(request);
    const stats = await engine.run();
    expect(stats.numSwitches).toBeGreaterThan(0);
    expect(lines).toHaveLength(stats.numSwitches);
    expect(lines[0]).toMatch(/^replica 3: prefill -> decode after \d+ steps: re-shard 0\.0 MiB/);
    // The fake clock only moves inside execute and switchTo: every ms is a step or a re-shard.
    expect(stats.reshardMs).toBe(5 * stats.numSwitches);
    expect(stats.prefillMs + stats.decodeMs).toBe(2 * stats.numSteps);
    expect(stats.busyMs).toBe(2 * stats.numSteps);
    expect(stats.reshardBytes).toBe(1000 * stats.numSwitches);
    expect(stats.prefetchMs + stats.writeBackMs).toBeGreaterThan(0);

    const byTrack = (track: string) => trace.events.filter((event) => event.track === track);
    const steps = byTrack('replica 3');
    expect(steps).toHaveLength(stats.numSteps);
    for (const event of steps) {
      expect(event.durationMs).toBe(2);
      expect(event.args?.phase).toBe(event.category);
    }
    expect(steps.reduce((sum, event) => sum + Number(event.args?.numTokens), 0)).toBe(
      stats.numScheduledTokens,
    );
    const reshards = byTrack('replica 3 reshard');
    expect(reshards.map((event) => event.name)).toEqual(
      device.switches.map((to) => `reshard ${to === 'decode' ? 'prefill' : 'decode'} -> ${to}`),
    );
    expect(reshards.every((event) => event.durationMs === 5 && event.category === 'reshard')).toBe(true);
    const kv = byTrack('replica 3 kv');
    const total = (name: string) =>
      kv.filter((event) => event.name === name).reduce((sum, event) => sum + event.durationMs, 0);
    expect(total('prefetch')).toBeCloseTo(stats.prefetchMs, 9);
    expect(total('write-back')).toBeCloseTo(stats.writeBackMs, 9);
  });
});
