import type { StepBatch, StepResult } from '@seesaw/protocol';
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
import { type EngineRequest, type RequestOutput, RequestRejectedError } from './request.ts';
import { DEFAULT_SAMPLING } from './sampling-params.ts';
import { SeesawEngine, type SeesawEngineOptions } from './seesaw-engine.ts';
import { pipelineStepsInFlight, SeesawScheduler } from './seesaw-scheduler.ts';
import type { Phase } from './step-scheduler.ts';

function request(id: string, promptLength: number, maxTokens: number): EngineRequest {
  return {
    requestId: id,
    promptTokenIds: Array.from({ length: promptLength }, (_, i) => 1 + ((i * 7) % (VOCAB - 1))),
    sampling: { ...DEFAULT_SAMPLING, maxTokens, seed: 5, ignoreEos: true },
  };
}

interface Observed {
  engine: SeesawEngine;
  device: HashingPhasedDevice;
  batches: Array<{ phase: Phase; batch: StepBatch }>;
  /** How often the watermark and low-mark checks applied. */
  checks: { watermark: number; lowMark: number };
}

/**
 * Runs a workload while checking the policy's invariants at every step and switch, from the
 * scheduler's state as the device sees it (the batch was just planned).
 */
async function observedRun(
  requests: readonly EngineRequest[],
  setup: {
    blockSize: number;
    numKvBlocks: Record<Phase, number>;
    numHostSlots: number;
    maxInFlight?: Partial<Record<Phase, number>>;
    options?: Partial<SeesawEngineOptions>;
    maxModelLen?: number;
    onFinished?: (out: RequestOutput) => void;
  },
): Promise<Observed> {
  const batches: Observed['batches'] = [];
  const inFlightSeqs = new Set<number>();
  let isDraining = false;
  const checks = { watermark: 0, lowMark: 0 };
  let engine: SeesawEngine;
  const device = new HashingPhasedDevice({
    blockSize: setup.blockSize,
    numKvBlocks: setup.numKvBlocks,
    numHostSlots: setup.numHostSlots,
    maxInFlight: setup.maxInFlight,
    vocabSize: VOCAB,
    onBatch: (batch) => {
      const scheduler = engine.scheduler;
      const phase = scheduler.phase;
      batches.push({ phase, batch });
      // A sequence is in one step in flight at most (rows and prefetches alike).
      for (const seqId of [
        ...batch.seqs.map((row) => row.seqId),
        ...(batch.prefetches ?? []).map((p) => p.seqId),
      ]) {
        expect(inFlightSeqs.has(seqId), `seq ${seqId} in two steps in flight`).toBe(false);
        inFlightSeqs.add(seqId);
      }
      if (phase === 'prefill') {
        expect(batch.seqs.reduce((sum, row) => sum + row.tokenIds.length, 0)).toBeLessThanOrEqual(
          scheduler.maxNumBatchedTokens,
        );
        // Every sampled row is a prompt's last chunk and writes the prompt back.
        const writtenBack = (batch.kvWriteBacks ?? []).map((swap) => swap.seqId);
        expect(writtenBack).toEqual(batch.seqs.filter((row) => row.isSampled).map((row) => row.seqId));
        expect(batch.prefetches ?? batch.swapIns ?? batch.swapOuts).toBeUndefined();
      } else {
        expect(batch.seqs.every((row) => row.tokenIds.length === 1 && row.isSampled)).toBe(true);
        if (batch.kvWriteBacks && !isDraining) {
          // The first draining step: decided at host usage <= low mark (before its reservations).
          isDraining = true;
          const host = scheduler.hostAllocator;
          const reserved = [...batch.kvWriteBacks, ...(batch.swapOuts ?? [])].reduce(
            (sum, swap) => sum + swap.slotIds.length,
            0,
          );
          expect((host.numUsedSlots - reserved) / host.numSlots).toBeLessThanOrEqual(scheduler.hostLowMark);
          checks.lowMark++;
        }
        if (batch.addedSeqs.length > 0 && scheduler.numRunning > batch.addedSeqs.length) {
          expect(scheduler.allocator.numFreeBlocks).toBeGreaterThanOrEqual(scheduler.numWatermarkBlocks);
          checks.watermark++;
        }
      }
    },
  });
  const observedDevice = Object.create(device) as HashingPhasedDevice;
  observedDevice.execute = async (batch: StepBatch): Promise<StepResult> => {
    try {
      return await device.execute(batch);
    } finally {
      for (const row of batch.seqs) inFlightSeqs.delete(row.seqId);
      for (const swap of batch.prefetches ?? []) inFlightSeqs.delete(swap.seqId);
    }
  };
  observedDevice.switchTo = async (phase: Phase) => {
    const scheduler = engine.scheduler;
    expect(scheduler.numInFlight).toBe(0);
    isDraining = false;
    if (phase === 'decode') {
      // Prefill ends only when nothing is mid-prompt, something is parked, and no prompt fits the host.
      expect(scheduler.numPrefilling).toBe(0);
      expect(scheduler.numParked).toBeGreaterThan(0);
      const next = scheduler.nextWaitingTokens;
      if (next !== null) {
        const host = scheduler.hostAllocator;
        expect(host.canReserve(host.slotsForTokens(next))).toBe(false);
      }
    } else {
      expect(scheduler.numWaiting).toBeGreaterThan(0);
      expect(scheduler.numRunning).toBe(0);
    }
    return device.switchTo(phase);
  };
  engine = new SeesawEngine(observedDevice, {
    maxModelLen: setup.maxModelLen ?? 512,
    eosTokenIds: [EOS],
    hostKv: { numSlots: setup.numHostSlots, slotBytes: 64 },
    ...setup.options,
  });
  for (const r of requests) engine.addRequest(r);
  await engine.run(setup.onFinished);
  return { engine, device, batches, checks };
}

describe('SeesawScheduler switches as the policy says', () => {
  it('a host tier holding exactly 3 prompts runs 9 prompts in 3 prefill phases', async () => {
    // Prompts of 8 tokens = 2 host slots of 4; 6 slots hold 3. Outputs of 3 tokens: decoding
    // grows each sequence past what the host could take back with the next prompt, so decode
    // runs to the end of its batch before the next prefill.
    const requests = Array.from({ length: 9 }, (_, i) => request(`p${i}`, 8, 3));
    const { engine, device, batches } = await observedRun(requests, {
      blockSize: 4,
      numKvBlocks: { prefill: 64, decode: 64 },
      numHostSlots: 6,
    });
    expect(device.switches).toEqual(['decode', 'prefill', 'decode', 'prefill', 'decode']);
    expect(engine.stats.numSwitches).toBe(5);
    const prefillBatches = batches.filter((b) => b.phase === 'prefill');
    expect(prefillBatches.map((b) => b.batch.seqs.length)).toEqual([3, 3, 3]);
    expect(engine.stats.numWriteBacks).toBe(9);
  });

  it('cuts a pipelined prefill phase into equal micro-batches (the last halved), one budget when unpipelined', async () => {
    const setup = {
      blockSize: 16,
      numKvBlocks: { prefill: 256, decode: 256 },
      numHostSlots: 1024,
      maxModelLen: 1024,
      options: { maxNumBatchedTokens: 4096 },
    };
    const stepTokens = (observed: Observed) =>
      observed.batches
        .filter((b) => b.phase === 'prefill')
        .map((b) => b.batch.seqs.reduce((sum, seq) => sum + seq.tokenIds.length, 0));
    // 32 prompts of 512 tokens, all fitting the host: 16384 tokens. With 2 steps in flight the
    // phase is cut into 16 * 2 micro-batches of 512 tokens, so filling and draining the
    // pipeline idles a stage for 1 of 33 slots; with 1 step in flight it is greedy (4096 a step).
    const long = Array.from({ length: 32 }, (_, i) => request(`l${i}`, 512, 2));
    const pipelinedLong = await observedRun(long, { ...setup, maxInFlight: { prefill: 2 } });
    expect(stepTokens(pipelinedLong)).toEqual(Array(32).fill(512));
    expect(stepTokens(await observedRun(long, setup))).toEqual(Array(4).fill(4096));
    // The last 512-token micro-batch is one prompt: it is not split (its second half would wait
    // for the first to leave the pipeline).
    // 16 prompts of 128: 2048 tokens. 32 micro-batches would be 64 tokens each, below the
    // 128-token floor (per-step overhead): micro-batches of 128, one prompt each, the last one
    // too (a prompt is never split to halve the drain); unpipelined one greedy step.
    const short = Array.from({ length: 16 }, (_, i) => request(`p${i}`, 128, 2));
    const pipelinedShort = await observedRun(short, { ...setup, maxInFlight: { prefill: 2 } });
    expect(stepTokens(pipelinedShort)).toEqual(Array(16).fill(128));
    expect(stepTokens(await observedRun(short, setup))).toEqual([2048]);
    // 24 prompts of 64: 1536 tokens, micro-batches of 128 (2 prompts), and the last 128 halves
    // (one prompt a step) so that the last stage drains the pipeline in half the time; 64 is
    // under the floor for another halving.
    const tiny = Array.from({ length: 24 }, (_, i) => request(`t${i}`, 64, 2));
    const pipelinedTiny = await observedRun(tiny, { ...setup, maxInFlight: { prefill: 2 } });
    expect(stepTokens(pipelinedTiny)).toEqual([...Array(11).fill(128), 64, 64]);
  });

  it('leaves decode early at the low mark, writing the running sequences back', async () => {
    // 20 prompts of 8 tokens (2 slots) and a host of 16 slots: 8 per prefill phase. Decode takes
    // at most 4 at once, so the first 4 leave the host half full (above the 25% low mark); once
    // the next 4 are swapped in it is empty, prompts wait, and the 4 running sequences (3 slots
    // each) plus the next prompt fit: after one more decode step their positions are written
    // back and prefill resumes.
    const requests = Array.from({ length: 20 }, (_, i) => request(`q${i}`, 8, 6));
    const { engine, device, batches } = await observedRun(requests, {
      blockSize: 4,
      numKvBlocks: { prefill: 64, decode: 64 },
      numHostSlots: 16,
      options: { maxNumSeqs: 4, hostLowMark: 0.25 },
    });
    const drains = batches.filter((b) => b.phase === 'decode' && b.batch.kvWriteBacks);
    expect(drains.length).toBeGreaterThan(0);
    // The first of the 4 is swapped in and decoded at the phase's first step, the other 3 are
    // prefetched behind it and join one step later: one position fewer.
    expect(drains[0].batch.kvWriteBacks!.map((swap) => swap.numTokens)).toEqual([10, 9, 9, 9]);
    expect(device.switches.filter((phase) => phase === 'prefill').length).toBeGreaterThan(0);
    // Written-back sequences resume where they stopped: outputs are the static engine's.
    const { outputs, onFinished } = outputCollector();
    const again = await observedRun(requests, {
      blockSize: 4,
      numKvBlocks: { prefill: 64, decode: 64 },
      numHostSlots: 16,
      options: { maxNumSeqs: 4, hostLowMark: 0.25 },
      onFinished,
    });
    expect(again.device.switches).toEqual(device.switches);
    expectSameOutputs(outputs, await staticReference(requests, 512));
    expect(engine.stats.numFinishedRequests).toBe(20);
  });

  it('respects the token budget, the watermark and the low mark on random workloads', async () => {
    for (const maxInFlight of [1, 2]) {
      const seed = (Math.random() * 2 ** 31) >>> 0;
      console.log(`seesaw policy thresholds (maxInFlight ${maxInFlight}) seed ${seed}`);
      const requests = randomWorkload(seed, { count: 30, maxPrompt: 120, maxTokens: 30 });
      const { engine, checks } = await observedRun(requests, {
        blockSize: 8,
        numKvBlocks: { prefill: 40, decode: 30 },
        numHostSlots: 50,
        maxInFlight: { prefill: maxInFlight, decode: maxInFlight },
        options: { maxNumBatchedTokens: 96, watermark: 0.15, hostLowMark: 0.3, maxNumSeqs: 10 },
        maxModelLen: 200,
      });
      expect(engine.stats.numFinishedRequests).toBe(30);
      expect(checks.watermark).toBeGreaterThan(0);
      expect(checks.lowMark).toBeGreaterThan(0);
    }
  });
});

describe('SeesawScheduler admission limits', () => {
  const config = {
    blockSize: 4,
    numKvBlocks: 10,
    numDecodeKvBlocks: 8,
    hostKv: { numSlots: 12, tokensPerSlot: 4, slotBytes: 64 },
    maxModelLen: 100,
    eosTokenIds: [EOS],
  };

  it('checks its settings', () => {
    expect(() => new SeesawScheduler({ ...config, watermark: 1 })).toThrow(/watermark must be in \[0, 1\)/);
    expect(() => new SeesawScheduler({ ...config, hostLowMark: 1.5 })).toThrow(
      /hostLowMark must be in \[0, 1\]/,
    );
    expect(() => new SeesawScheduler({ ...config, maxInFlight: 0 })).toThrow(
      /maxInFlight must be a positive/,
    );
    expect(
      () => new SeesawScheduler({ ...config, hostKv: undefined as unknown as typeof config.hostKv }),
    ).toThrow(/needs a host KV tier/);
    const defaults = new SeesawScheduler(config);
    expect([
      defaults.maxNumBatchedTokens,
      defaults.maxNumSeqs,
      defaults.watermark,
      defaults.hostLowMark,
    ]).toEqual([4096, 256, 0.1, 0.2]);
    expect([defaults.phase, defaults.maxInFlight, defaults.numWatermarkBlocks, defaults.maxModelLen]).toEqual(
      ['prefill', 1, 1, 40],
    );
  });

  it('keeps pp + 1 micro-batches in flight in a pipelined prefill phase and pp in decode', () => {
    expect([pipelineStepsInFlight('prefill', 1), pipelineStepsInFlight('decode', 1)]).toEqual([1, 1]);
    expect([pipelineStepsInFlight('prefill', 2), pipelineStepsInFlight('decode', 2)]).toEqual([3, 2]);
    expect(pipelineStepsInFlight('prefill', 4)).toBe(5);
    // Four 4-token prompts on two stages: the phase's budget is cut by stages (16 micro-batches
    // per stage, floored at 256 tokens), and three disjoint steps go out before any answers.
    const scheduler = new SeesawScheduler({
      ...config,
      numKvBlocks: 40,
      hostKv: { ...config.hostKv, numSlots: 40 },
      maxNumBatchedTokens: 4,
      maxInFlight: 2,
    });
    for (let i = 0; i < 4; i++) scheduler.addRequest(request(`p${i}`, 4, 2), 0);
    expect(scheduler.maxInFlight).toBe(3);
    const plans = [scheduler.schedule(), scheduler.schedule(), scheduler.schedule()];
    expect(plans.map((plan) => plan?.batch.seqs.map((seq) => seq.seqId))).toEqual([[0], [1], [2]]);
    expect(scheduler.schedule()).toBeNull();
    for (const plan of plans) {
      const seqId = plan!.batch.seqs[0].seqId;
      scheduler.update(plan!, { stepId: plan!.batch.stepId, sampled: [{ seqId, tokenId: 3 }] }, 1);
    }
    const last = scheduler.schedule()!;
    scheduler.update(last, { stepId: last.batch.stepId, sampled: [{ seqId: 3, tokenId: 3 }] }, 1);
    expect(scheduler.pendingSwitch()).toBe('decode');
    scheduler.enterPhase('decode', 8, { maxInFlight: 2 });
    expect(scheduler.maxInFlight).toBe(2);
  });

  it('rejects requests that cannot fit the host tier or either layout, with the reason', () => {
    const scheduler = new SeesawScheduler({ ...config, hostKv: { ...config.hostKv, numSlots: 6 } });
    expect(() => scheduler.addRequest(request('host', 20, 10), 0)).toThrow(
      /"host" rejected: needs up to 29 tokens of KV, the host KV tier holds 24/,
    );
    const other = new SeesawScheduler(config);
    expect(() => other.addRequest(request('decode', 20, 20), 0)).toThrow(
      /needs up to 39 tokens of KV, the decode layout's device cache holds 32/,
    );
    expect(() => other.addRequest(request('prefill', 40, 1), 0)).toThrow(RequestRejectedError);
    other.addRequest(request('fits', 20, 13), 0);
    expect(() => other.addRequest(request('fits', 2, 1), 0)).toThrow(/duplicate requestId/);
    expect(other.hasUnfinishedRequests()).toBe(true);
    expect(other.numWaiting).toBe(1);
  });

  it('refuses a phase switch nobody asked for, and a new layout too small for what waits', async () => {
    const scheduler = new SeesawScheduler({ ...config, numDecodeKvBlocks: undefined });
    expect(() => scheduler.enterPhase('decode', 8)).toThrow(/no switch to it is pending/);
    expect(() => scheduler.enterPhase('prefill', 8)).toThrow(/already in the prefill phase/);
    scheduler.addRequest(request('long', 20, 12), 0);
    const plan = scheduler.schedule()!;
    expect(plan.batch.kvWriteBacks?.map((swap) => swap.numTokens)).toEqual([20]);
    expect(scheduler.schedule()).toBeNull(); // maxInFlight 1, and the only sequence is in flight
    scheduler.update(plan, { stepId: plan.batch.stepId, sampled: [{ seqId: 0, tokenId: 3 }] }, 1);
    expect(scheduler.pendingSwitch()).toBe('decode');
    expect(() => scheduler.enterPhase('decode', 7)).toThrow(
      /holds 28 tokens, but request "long" needs up to 31/,
    );
    scheduler.enterPhase('decode', 8);
    expect(scheduler.phase).toBe('decode');
    expect(scheduler.counters.numSwitches).toBe(1);
  });

  it('keeps a switch it named while the replica re-shards: a request added meanwhile waits', () => {
    const scheduler = new SeesawScheduler({ ...config, numDecodeKvBlocks: undefined });
    scheduler.addRequest(request('first', 20, 4), 0);
    const plan = scheduler.schedule()!;
    scheduler.update(plan, { stepId: plan.batch.stepId, sampled: [{ seqId: 0, tokenId: 3 }] }, 1);
    expect(scheduler.pendingSwitch()).toBe('decode');
    // A lost replica's request requeued here during the re-shard would make the prefill phase
    // not done; the devices have switched all the same.
    scheduler.addRequest(request('requeued', 10, 2), 2);
    expect(scheduler.pendingSwitch()).toBe('decode');
    scheduler.enterPhase('decode', 8);
    expect(scheduler.phase).toBe('decode');
    expect(scheduler.numWaiting).toBe(1);
  });

  it('outputs equal the static engine when a sequence must wait for the whole host tier', async () => {
    // Each prompt needs most of the host: strictly one sequence per prefill phase.
    const seed = (Math.random() * 2 ** 31) >>> 0;
    console.log(`seesaw one-at-a-time seed ${seed}`);
    const requests = randomWorkload(seed, { count: 6, maxPrompt: 30, maxTokens: 20 }).map((r) => ({
      ...r,
      promptTokenIds: [...r.promptTokenIds, ...Array.from({ length: 30 }, () => 1)],
    }));
    const expected = await staticReference(requests, 100);
    const device = new HashingPhasedDevice({
      blockSize: 4,
      numKvBlocks: { prefill: 30, decode: 30 },
      numHostSlots: 20,
      vocabSize: VOCAB,
    });
    const engine = new SeesawEngine(device, {
      maxModelLen: 100,
      eosTokenIds: [EOS],
      hostKv: { numSlots: 20, slotBytes: 64 },
    });
    for (const r of requests) engine.addRequest(r);
    const { outputs, onFinished } = outputCollector();
    await engine.run(onFinished);
    expectSameOutputs(outputs, expected);
    expect(device.switches.filter((phase) => phase === 'decode').length).toBeGreaterThanOrEqual(3);
  });
});
