/**
 * A lost device in a local Seesaw run (D2P2 prefill, D2T2 decode on a phased LocalCluster, a
 * host tier of a few prompts so the replicas switch back and forth): a worker of replica 1
 * terminated mid-run drops that replica (its devices closed), its unfinished requests start over
 * from their prompts on replica 0, and every greedy output equals one in-process CpuDevice's,
 * each request finished once. The remote version (a host agent killed) is
 * seesaw-cross-host-failure.test.ts.
 */
import { SeesawClusterEngine } from '@seesaw/coordinator';
import { hostKvLayoutFor, slotBytes } from '@seesaw/kv-store';
import { loadModelConfig } from '@seesaw/model';
import { beforeAll, describe, expect, it } from 'vitest';
import { BLOCK_SIZE, FIXTURE, makeRequests, runReference, startCluster } from './cluster-test-support.ts';

const config = loadModelConfig(FIXTURE);
/** Host slots per replica: a few prompts' KV (a slot holds BLOCK_SIZE tokens). */
const HOST_SLOTS_PER_REPLICA = 30;

describe('a device lost in a local Seesaw run (D2P2 -> D2T2)', () => {
  const requests = makeRequests(config.vocabSize, 11);
  let reference = new Map<string, number[]>();

  beforeAll(async () => {
    reference = await runReference(FIXTURE, requests);
  });

  it('drops its replica and finishes every request on the other with the single-device tokens', async () => {
    const logged: string[] = [];
    const cluster = await startCluster(FIXTURE, 'D2P2', {
      decodeParallel: 'D2T2',
      hostKvBytes: 2 * HOST_SLOTS_PER_REPLICA * slotBytes(hostKvLayoutFor(config, BLOCK_SIZE)),
      log: () => {},
    });
    try {
      const replicas = cluster.phasedReplicas;
      const engine = new SeesawClusterEngine(replicas, {
        maxModelLen: config.maxPositionEmbeddings,
        eosTokenIds: config.eosTokenIds,
        maxNumBatchedTokens: 64,
        maxNumSeqs: 8,
        hostKv: cluster.engineHostKv!,
        log: (line) => logged.push(line),
        onReplicaLost: (r) => replicas[r]!.abort(),
      });
      for (const request of requests) engine.addRequest(request);
      const outputs = new Map<string, number[]>();
      const finished: string[] = [];
      const keep = (batch: Awaited<ReturnType<typeof engine.step>>) => {
        for (const output of batch) {
          finished.push(output.requestId);
          outputs.set(output.requestId, output.outputTokenIds);
        }
      };
      keep(await engine.step());
      keep(await engine.step());
      // Device 2 is replica 1's first (its prefill stage 0, decode TP rank 0).
      await cluster.actors[2]!.worker!.terminate();
      while (engine.hasUnfinishedRequests()) keep(await engine.step());
      for (const [requestId, tokens] of reference) expect(outputs.get(requestId), requestId).toEqual(tokens);
      expect(finished).toHaveLength(requests.length);
      expect(engine.numLiveReplicas).toBe(1);
      expect(engine.lostDevices[0]).toMatch(/^device [23] /);
      expect(
        logged.some((line) => /replica 1 stopped; requeued [1-9]\d* unfinished request/.test(line)),
      ).toBe(true);
    } finally {
      await cluster.close({ mode: 'abort' });
    }
  });
});
