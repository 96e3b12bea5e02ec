/**
 * A local Seesaw run that loses its last replica re-plans onto the healthy devices
 * (RecoveringSeesawCluster): T2P2 -> T4 on four device workers losing one goes on as the pair
 * P2 -> T2 on two of the three left (no layout of 3 splits this model), and P2 -> T2 on two
 * losing one falls back to the static D1 on the one left (no pair fits one device). Each time the
 * unfinished requests restart from their prompts, the requests finished before the loss are not
 * run again, and every greedy output equals one in-process CpuDevice's. The remote version (a
 * host agent killed) is seesaw-cross-host-replan.test.ts.
 */

import { RecoveringSeesawCluster } from '@seesaw/coordinator';
import { createDeviceWorkerGroup, deviceWorkerUrl } from '@seesaw/gpu-actor';
import { hostKvLayoutFor, slotBytes } from '@seesaw/kv-store';
import { loadModelConfig, parseParallelConfig } from '@seesaw/model';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BLOCK_SIZE,
  DEVICE_MEMORY_BYTES,
  FIXTURE,
  makeRequests,
  runReference,
  TOKEN,
} from './cluster-test-support.ts';

const config = loadModelConfig(FIXTURE);
/** Host slots: a few prompts' KV (a slot holds BLOCK_SIZE tokens), so the run switches often. */
const HOST_SLOTS = 30;

async function runWithLoss(prefill: string, decode: string, killDevice: number) {
  const logged: string[] = [];
  const recovering = await RecoveringSeesawCluster.start({
    cluster: {
      workerUrl: deviceWorkerUrl(),
      modelDir: FIXTURE,
      parallel: parseParallelConfig(prefill),
      decodeParallel: parseParallelConfig(decode),
      numThreadsPerDevice: 1,
      deviceMemoryBytes: DEVICE_MEMORY_BYTES,
      blockSize: BLOCK_SIZE,
      token: TOKEN,
      createTpGroup: createDeviceWorkerGroup,
      groupTimeoutMs: 20_000,
      hostKvBytes: HOST_SLOTS * slotBytes(hostKvLayoutFor(config, BLOCK_SIZE)),
      log: () => {},
    },
    engine: {
      maxModelLen: config.maxPositionEmbeddings,
      eosTokenIds: config.eosTokenIds,
      maxNumBatchedTokens: 64,
      maxNumSeqs: 8,
    },
    staticMaxNumBatchedTokens: 64,
    log: (line) => logged.push(line),
  });
  const outputs = new Map<string, number[]>();
  const finished: string[] = [];
  try {
    for (const request of requests) recovering.addRequest(request);
    const keep = (batch: Awaited<ReturnType<typeof recovering.step>>) => {
      for (const output of batch) {
        finished.push(output.requestId);
        outputs.set(output.requestId, output.outputTokenIds);
      }
    };
    keep(await recovering.step());
    keep(await recovering.step());
    await recovering.cluster.actors[killDevice]!.worker!.terminate();
    while (recovering.hasUnfinishedRequests()) keep(await recovering.step());
    return { outputs, finished, logged, layout: recovering.layoutName, lost: recovering.lostDevices };
  } finally {
    await recovering.close({ mode: 'abort' });
  }
}

const requests = makeRequests(config.vocabSize, 13);

describe('a local Seesaw run re-planned after its last replica is lost', () => {
  let reference = new Map<string, number[]>();

  beforeAll(async () => {
    reference = await runReference(FIXTURE, requests);
  });

  it.each([
    ['T2P2', 'T4', 3, 'prefill P2, decode T2', 3],
    ['P2', 'T2', 1, 'D1', 1],
  ])(
    '%s -> %s losing device %i goes on as %s with the single-device tokens',
    async (prefill, decode, killDevice, layout, numHealthy) => {
      const run = await runWithLoss(prefill, decode, killDevice);
      for (const [requestId, tokens] of reference)
        expect(run.outputs.get(requestId), requestId).toEqual(tokens);
      expect(run.finished).toHaveLength(requests.length);
      expect(run.layout).toBe(layout);
      expect(run.lost[0]).toMatch(new RegExp(`^device ${killDevice} `));
      const replanned = run.logged.find((line) => line.startsWith('re-planned'));
      expect(replanned).toMatch(
        new RegExp(`-> ${layout} on ${numHealthy} healthy devices?; resuming [1-9]\\d* unfinished request`),
      );
    },
    60_000,
  );
});
