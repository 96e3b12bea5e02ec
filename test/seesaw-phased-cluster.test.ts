/**
 * The whole Seesaw path on real device workers: SeesawEngine (one replica) and
 * SeesawClusterEngine (two replicas) drive phased LocalClusters that prefill under P2, write
 * every prompt's KV to the host kv-store, re-shard to T2, swap the KV back in and decode, and
 * switch back when prompts wait. A host tier of a few prompts' KV forces several round trips.
 * Greedy outputs must equal one in-process CpuDevice's, with every switch and every KV move
 * accounted for.
 */
import { SeesawClusterEngine, SeesawEngine, type SeesawEngineStats } from '@seesaw/coordinator';
import { hostKvLayoutFor, slotBytes } from '@seesaw/kv-store';
import { loadModelConfig } from '@seesaw/model';
import { beforeAll, describe, expect, it } from 'vitest';
import { BLOCK_SIZE, FIXTURE, makeRequests, runReference, startCluster } from './cluster-test-support.ts';

const config = loadModelConfig(FIXTURE);
/** Host slots per replica: about 3 of the larger prompts (a slot holds BLOCK_SIZE tokens). */
const HOST_SLOTS_PER_REPLICA = 30;
const SEESAW_OPTIONS = {
  maxModelLen: config.maxPositionEmbeddings,
  eosTokenIds: config.eosTokenIds,
  maxNumBatchedTokens: 64,
  maxNumSeqs: 8,
};

function expectSwitchesAccountedFor(stats: SeesawEngineStats, numRequests: number): void {
  expect(stats.numFinishedRequests).toBe(numRequests);
  // At least prefill -> decode -> prefill -> decode: the tier cannot hold every prompt at once.
  expect(stats.numSwitches).toBeGreaterThanOrEqual(3);
  expect(stats.reshardBytes).toBeGreaterThan(0);
  expect(stats.numWriteBacks).toBeGreaterThanOrEqual(numRequests);
  // Every request decodes (maxTokens >= 5), so each one's KV came back from the host at least
  // once: overlapped (prefetch) or, when nothing is running to overlap with, in the step (swap-in).
  expect(stats.numPrefetches + stats.numSwapIns).toBeGreaterThanOrEqual(numRequests);
  // Swap-in hiding counted per sequence a step needed: no more than were prefetched, landed ones
  // among them, and bytes alongside (every prefetched sequence has KV to move).
  console.log(
    `prefetches ${stats.numPrefetches}, needed ${stats.prefetchesNeeded}, landed first ${stats.prefetchesLanded}; ` +
      `bytes needed ${stats.prefetchBytesNeeded}, landed ${stats.prefetchBytesLanded}`,
  );
  expect(stats.prefetchesNeeded).toBeLessThanOrEqual(stats.numPrefetches);
  expect(stats.prefetchesLanded).toBeLessThanOrEqual(stats.prefetchesNeeded);
  expect(stats.prefetchBytesLanded).toBeLessThanOrEqual(stats.prefetchBytesNeeded);
  expect(stats.prefetchBytesNeeded > 0).toBe(stats.prefetchesNeeded > 0);
  if (stats.numPrefetches > 0) expect(stats.prefetchesNeeded).toBeGreaterThan(0);
}

describe('Seesaw engines on a phased LocalCluster (P2 prefill, T2 decode) with a host KV tier', () => {
  const requests = makeRequests(config.vocabSize, 5);
  let reference = new Map<string, number[]>();
  const bytesPerSlot = slotBytes(hostKvLayoutFor(config, BLOCK_SIZE));

  beforeAll(async () => {
    reference = await runReference(FIXTURE, requests);
  });

  it('one replica: SeesawEngine gives the single device tokens through several switches', async () => {
    const lines: string[] = [];
    const cluster = await startCluster(FIXTURE, 'P2', {
      decodeParallel: 'T2',
      hostKvBytes: HOST_SLOTS_PER_REPLICA * bytesPerSlot,
      log: (line) => {
        if (line.startsWith('reshard')) lines.push(line);
        else if (!line.includes('accepted')) console.warn(line);
      },
    });
    try {
      const hostKv = cluster.engineHostKv!;
      expect(hostKv.numSlots).toBe(HOST_SLOTS_PER_REPLICA);
      const engine = new SeesawEngine(cluster.phasedReplicas[0], { ...SEESAW_OPTIONS, hostKv });
      for (const request of requests) engine.addRequest(request);
      const outputs = new Map<string, number[]>();
      const stats = await engine.run((output) => outputs.set(output.requestId, output.outputTokenIds));
      for (const [requestId, tokens] of reference) expect(outputs.get(requestId), requestId).toEqual(tokens);
      expectSwitchesAccountedFor(stats, requests.length);
      expect(lines).toHaveLength(stats.numSwitches);
      expect(lines[0]).toMatch(/^reshard prefill P2 -> decode T2: /);
      expect(lines[1]).toMatch(/^reshard decode T2 -> prefill P2: /);
    } finally {
      await cluster.close({ mode: 'drain' });
    }
  });

  it('two replicas: SeesawClusterEngine keeps each replica in its own range of host slots', async () => {
    const lines: string[] = [];
    const cluster = await startCluster(FIXTURE, 'D2P2', {
      decodeParallel: 'D2T2',
      hostKvBytes: 2 * HOST_SLOTS_PER_REPLICA * bytesPerSlot,
      log: (line) => {
        if (line.includes('reshard')) lines.push(line);
        else if (!line.includes('accepted')) console.warn(line);
      },
    });
    try {
      expect(cluster.phasedReplicas).toHaveLength(2);
      const engine = new SeesawClusterEngine(cluster.phasedReplicas, {
        ...SEESAW_OPTIONS,
        hostKv: cluster.engineHostKv!,
      });
      for (const request of requests) engine.addRequest(request);
      const outputs = new Map<string, number[]>();
      await engine.run((output) => outputs.set(output.requestId, output.outputTokenIds));
      for (const [requestId, tokens] of reference) expect(outputs.get(requestId), requestId).toEqual(tokens);
      for (const replica of engine.engines) expect(replica.stats.numFinishedRequests).toBeGreaterThan(0);
      expect(lines.some((line) => line.startsWith('replica 0: reshard prefill P2 -> decode T2'))).toBe(true);
      expect(lines.some((line) => line.startsWith('replica 1: reshard prefill P2 -> decode T2'))).toBe(true);
    } finally {
      await cluster.close({ mode: 'drain' });
    }
  });
});
