/**
 * Device actors in real worker threads, laid out DxTyPz by LocalCluster, must answer exactly like
 * one in-process CpuDevice: the same greedy tokens for a mixed set of requests driven by the
 * ClusterEngine (DP replicas x PP virtual engines), and the same logits within a relative
 * tolerance on hand-made steps (batched prefill, decode, chunked prefill beside decodes).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EngineRequest } from '@seesaw/coordinator';
import { CpuDevice } from '@seesaw/gpu-actor';
import { generateCheckpoint, loadModelConfig } from '@seesaw/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareWithSingleDevice } from '../packages/gpu-actor/test/sharded-test-support.ts';
import {
  BLOCK_SIZE,
  FIXTURE,
  makeRequests,
  runOnCluster,
  runReference,
  startCluster,
} from './cluster-test-support.ts';

// Logits must be bit-identical to the single device's under every layout: TP ranks compute
// subtrees of the canonical reduction tree and the all-reduce completes it (docs/determinism.md).

async function checkConfiguration(
  modelDir: string,
  parallel: string,
  requests: EngineRequest[],
  reference: Map<string, number[]>,
  single: CpuDevice,
): Promise<void> {
  const cluster = await startCluster(modelDir, parallel);
  try {
    // Logits first, on a fresh replica (its own step and sequence ids), then the engine run.
    for (const replica of cluster.replicas) {
      const error = await compareWithSingleDevice(replica, single, single.config.vocabSize);
      expect(error).toBe(0);
    }
    const { outputs, engine } = await runOnCluster(cluster, requests);
    expect(outputs.size).toBe(requests.length);
    for (const [requestId, tokens] of reference) expect(outputs.get(requestId), requestId).toEqual(tokens);
    // Every virtual engine got work (placement spreads requests), so all partitions were used.
    for (const e of engine.engines) expect(e.stats.numFinishedRequests).toBeGreaterThan(0);
  } finally {
    await cluster.close({ mode: 'drain' });
  }
}

describe('LocalCluster on the tiny fixture', () => {
  const config = loadModelConfig(FIXTURE);
  const requests = makeRequests(config.vocabSize);
  let reference = new Map<string, number[]>();
  let single: CpuDevice;

  beforeAll(async () => {
    reference = await runReference(FIXTURE, requests);
    single = await CpuDevice.load(FIXTURE, { numThreads: 1, blockSize: BLOCK_SIZE, kvCacheBytes: 16 << 20 });
  });
  afterAll(() => single?.close());

  it.each(['D1', 'D2', 'T2', 'P2', 'T4', 'P4', 'T2P2', 'D2T2'])(
    '%s gives the single device tokens and logits',
    async (parallel) => {
      await checkConfiguration(FIXTURE, parallel, requests, reference, single);
    },
  );
});

describe('LocalCluster on a generated tiny model', () => {
  let dir = '';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-cluster-'));
    await generateCheckpoint({ shape: 'tiny', seed: 11, dtype: 'bf16', outDir: dir });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('D2T2 and T2P2 give the single device tokens and logits', async () => {
    const config = loadModelConfig(dir);
    const requests = makeRequests(config.vocabSize, 99);
    const reference = await runReference(dir, requests);
    const single = await CpuDevice.load(dir, {
      numThreads: 1,
      blockSize: BLOCK_SIZE,
      kvCacheBytes: 16 << 20,
    });
    try {
      for (const parallel of ['D2T2', 'T2P2']) {
        await checkConfiguration(dir, parallel, requests, reference, single);
      }
    } finally {
      single.close();
    }
  });
});
