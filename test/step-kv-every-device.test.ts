/**
 * KV timings from every device of a replica, on real device workers: a Seesaw run (P2 prefill,
 * T2 decode) with a host KV tier, every step's result recorded as the engine gets it. Stage 0's
 * write-backs of a P2 prefill and TP rank 1's swap-ins of a T2 decode must be in the step's
 * reports and in the combined figures; the combined waits fit inside the step's elapsed time;
 * and the trace draws each device's spans (mapped from its clock at hello) inside the
 * coordinator's span of their step, up to that device clock's round-trip bound.
 */
import { SeesawEngine, TraceRecorder } from '@seesaw/coordinator';
import { hostKvLayoutFor, slotBytes } from '@seesaw/kv-store';
import { loadModelConfig } from '@seesaw/model';
import type { StepBatch, StepResult } from '@seesaw/protocol';
import { expect, it } from 'vitest';
import { BLOCK_SIZE, FIXTURE, makeRequests, startCluster } from './cluster-test-support.ts';

const config = loadModelConfig(FIXTURE);
const HOST_SLOTS = 30;
/** Rounding between the trace recorder's clock and the epoch clock device spans are mapped to, ms. */
const CLOCK_SLACK_MS = 1;

interface Recorded {
  phase: 'prefill' | 'decode';
  batch: StepBatch;
  result: StepResult;
  elapsedMs: number;
}

it('every stage and TP rank reports its KV timings; combined figures and trace spans stay on one timeline', async () => {
  const cluster = await startCluster(FIXTURE, 'P2', {
    decodeParallel: 'T2',
    hostKvBytes: HOST_SLOTS * slotBytes(hostKvLayoutFor(config, BLOCK_SIZE)),
  });
  try {
    const replica = cluster.phasedReplicas[0]!;
    const recorded: Recorded[] = [];
    const execute = replica.execute.bind(replica);
    replica.execute = async (batch) => {
      const phase = replica.phase;
      const startMs = performance.now();
      const result = await execute(batch);
      recorded.push({ phase, batch, result, elapsedMs: performance.now() - startMs });
      return result;
    };
    const trace = new TraceRecorder();
    const engine = new SeesawEngine(replica, {
      maxModelLen: config.maxPositionEmbeddings,
      eosTokenIds: config.eosTokenIds,
      maxNumBatchedTokens: 64,
      maxNumSeqs: 8,
      hostKv: cluster.engineHostKv!,
      trace,
    });
    const requests = makeRequests(config.vocabSize, 5);
    for (const request of requests) engine.addRequest(request);
    const runStartMs = trace.now();
    const stats = await engine.run(() => {});
    expect(stats.numFinishedRequests).toBe(requests.length);

    // P2 prefill steps that write back: stage 0 (device 0) reports its own write-backs, and the
    // combined write-back time is every device's.
    const writeBackSteps = recorded.filter((r) => r.phase === 'prefill' && r.batch.kvWriteBacks?.length);
    const stage0WriteBacks = writeBackSteps.filter((r) =>
      r.result.deviceKv?.some((d) => d.ppStage === 0 && d.device === 0 && d.kv.writeBackMs > 0),
    );
    expect(stage0WriteBacks.length).toBeGreaterThan(0);
    for (const { result } of stage0WriteBacks) {
      const sum = result.deviceKv!.reduce((total, d) => total + d.kv.writeBackMs, 0);
      expect(result.kvTimings!.writeBackMs).toBeCloseTo(sum, 6);
      expect(result.deviceKv!.some((d) => d.ppStage === 1)).toBe(true);
    }

    // T2 steps: TP rank 1 reports the KV it brought in (prefetched or swapped in before compute).
    const rank1Prefetches = recorded.filter(
      (r) => r.phase === 'decode' && r.result.deviceKv?.some((d) => d.tpRank === 1 && d.kv.prefetchMs > 0),
    );
    expect(rank1Prefetches.length).toBeGreaterThan(0);

    // What the answering device alone would have reported, against every device's.
    const answererOnly = (r: Recorded) => {
      const answering = r.phase === 'prefill' ? 1 : 0; // P2: stage 1 answers; T2: rank 0
      return r.result.deviceKv?.find((d) => d.device === answering)?.kv.writeBackMs ?? 0;
    };
    const sumOf = (f: (r: Recorded) => number) => recorded.reduce((total, r) => total + f(r), 0);
    console.log(
      `write-back ms: answering device only ${sumOf(answererOnly).toFixed(1)}, ` +
        `every device ${sumOf((r) => r.result.kvTimings?.writeBackMs ?? 0).toFixed(1)}`,
    );

    let totalWaitMs = 0;
    for (const { result, elapsedMs } of recorded) {
      const kv = result.kvTimings;
      if (!kv) continue;
      // Waits and compute along the step's path never exceed the step's own elapsed time.
      expect(kv.prefetchWaitMs + kv.writeBackWaitMs).toBeLessThanOrEqual(elapsedMs + CLOCK_SLACK_MS);
      expect(kv.computeMs).toBeLessThanOrEqual(elapsedMs + CLOCK_SLACK_MS);
      expect(kv.prefetchesLanded ?? 0).toBeLessThanOrEqual(kv.prefetchesNeeded ?? 0);
      expect(kv.prefetchBytesLanded ?? 0).toBeLessThanOrEqual(kv.prefetchBytesNeeded ?? 0);
      totalWaitMs += kv.prefetchWaitMs + kv.writeBackWaitMs;
    }
    expect(stats.kvWaitMs).toBeCloseTo(totalWaitMs, 6);
    expect(stats.prefetchesNeeded).toBeLessThanOrEqual(stats.numPrefetches + stats.numSwapIns);

    // Trace: each device's spans lie inside its step's coordinator span, up to the device clock's
    // bound (half the best probe round trip); a prefetch may be issued by an earlier step, so it
    // only has to land before its step answers.
    const stepSpans = new Map<number, { startMs: number; endMs: number }>();
    for (const event of trace.events) {
      const match = event.track === 'replica 0' && /step (\d+)$/.exec(event.name);
      if (match)
        stepSpans.set(Number(match[1]), { startMs: event.startMs, endMs: event.startMs + event.durationMs });
    }
    const deviceEvents = trace.events.filter((event) => /^replica 0 device \d kv$/.test(event.track));
    expect(deviceEvents.some((e) => e.track === 'replica 0 device 0 kv' && e.name === 'write-back')).toBe(
      true,
    );
    expect(deviceEvents.some((e) => e.track === 'replica 0 device 1 kv' && e.name === 'compute')).toBe(true);
    let worstMs = 0;
    for (const event of deviceEvents) {
      const device = Number(/device (\d)/.exec(event.track)![1]);
      const boundMs = cluster.actors[device]!.clock.uncertaintyMs + CLOCK_SLACK_MS;
      const step = stepSpans.get(event.args!.stepId as number)!;
      const endMs = event.startMs + event.durationMs;
      expect(endMs).toBeLessThanOrEqual(step.endMs + boundMs);
      if (event.name === 'prefetch') expect(event.startMs).toBeGreaterThanOrEqual(runStartMs - boundMs);
      else expect(event.startMs).toBeGreaterThanOrEqual(step.startMs - boundMs);
      worstMs = Math.max(
        worstMs,
        endMs - step.endMs,
        event.name === 'prefetch' ? 0 : step.startMs - event.startMs,
      );
    }
    const bounds = cluster.actors.map((actor) => actor.clock.uncertaintyMs.toFixed(3)).join(', ');
    console.log(
      `${deviceEvents.length} device spans; worst outside its step ${worstMs.toFixed(3)} ms; bounds ${bounds} ms`,
    );
    // Re-shards are drawn per device from the device's own start and end.
    const reshards = trace.events.filter((e) => e.category === 'reshard' && /device \d$/.test(e.track));
    expect(reshards.length).toBeGreaterThanOrEqual(2 * stats.numSwitches);
  } finally {
    await cluster.close({ mode: 'drain' });
  }
}, 120_000);
