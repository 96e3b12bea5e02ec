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
import { SeesawClusterEngine } from './seesaw-cluster-engine.ts';
import { TraceRecorder } from './trace-recorder.ts';

describe('SeesawClusterEngine', () => {
  it('runs DP replicas that switch on their own and gives the static tokens', async () => {
    const seed = (Math.random() * 2 ** 31) >>> 0;
    console.log(`seesaw cluster seed ${seed}`);
    const requests = randomWorkload(seed, { count: 20, maxPrompt: 100, maxTokens: 30 });
    const expected = await staticReference(requests, 160);
    const replicas = [0, 1].map(
      (r) =>
        new HashingPhasedDevice({
          blockSize: 8,
          numKvBlocks: { prefill: 20 + r, decode: 24 },
          numHostSlots: 30,
          maxInFlight: { prefill: 2 },
          vocabSize: VOCAB,
        }),
    );
    const trace = new TraceRecorder();
    const cluster = new SeesawClusterEngine(replicas, {
      maxModelLen: 160,
      eosTokenIds: [EOS],
      hostKv: { numSlots: 30, slotBytes: 64 },
      trace,
    });
    for (const request of requests) cluster.addRequest(request);
    // Least outstanding tokens: both replicas get work.
    expect(cluster.engines.map((engine) => engine.scheduler.numWaiting).every((n) => n > 0)).toBe(true);
    const { outputs, onFinished } = outputCollector();
    const stats = await cluster.run(onFinished);
    expectSameOutputs(outputs, expected);
    const perReplica = cluster.replicaStats;
    expect(stats.numFinishedRequests).toBe(20);
    expect(stats.numSwitches).toBe(perReplica[0].numSwitches + perReplica[1].numSwitches);
    expect(perReplica.map((s) => s.numSwitches)).toEqual(replicas.map((r) => r.switches.length));
    const tracks = new Set(trace.events.map((event) => event.track));
    for (const track of ['replica 0', 'replica 1', 'replica 0 reshard', 'replica 1 reshard'])
      expect(tracks).toContain(track);
    expect(cluster.hasUnfinishedRequests()).toBe(false);
  });

  it('places on the replica with the fewest outstanding tokens and stops on a replica failure', async () => {
    const good = new HashingPhasedDevice({
      blockSize: 4,
      numKvBlocks: { prefill: 32, decode: 32 },
      numHostSlots: 20,
      vocabSize: VOCAB,
    });
    const bad = new HashingPhasedDevice({
      blockSize: 4,
      numKvBlocks: { prefill: 32, decode: 32 },
      numHostSlots: 20,
      vocabSize: VOCAB,
    });
    bad.execute = async () => {
      throw new Error('device lost');
    };
    const cluster = new SeesawClusterEngine([good, bad], {
      maxModelLen: 64,
      eosTokenIds: [EOS],
      hostKv: { numSlots: 20, slotBytes: 64 },
    });
    const [a, b, c] = randomWorkload(9, { count: 3, maxPrompt: 10, maxTokens: 5 });
    cluster.addRequest({ ...a, promptTokenIds: Array(20).fill(1) }); // replica 0
    cluster.addRequest(b); // replica 1 (0 outstanding)
    cluster.addRequest(c); // replica 1 again only if it still has fewer
    const waiting = cluster.engines.map((engine) => engine.scheduler.numWaiting);
    expect(waiting[0]).toBe(1);
    expect(waiting[0] + waiting[1]).toBe(3);
    await expect(cluster.run()).rejects.toThrow(/device lost/);
    expect(() => cluster.addRequest({ ...a, requestId: 'late' })).toThrow(/device lost/);
  });
});
