import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SAMPLING, Engine, type EngineRequest, type RequestOutput } from '@seesaw/coordinator';
import { CpuDevice } from '@seesaw/gpu-actor';
import { generateCheckpoint } from '@seesaw/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The real engine on a real (tiny) model: continuous batching, chunked prefill and
// preemption by recompute must not change a single token, greedy or seeded.

const BLOCK_SIZE = 8;
let modelDir = '';
let workDir = '';

function makeRequests(seed: number): EngineRequest[] {
  let state = seed;
  const next = (n: number) => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state % n;
  };
  return Array.from({ length: 12 }, (_, i) => ({
    requestId: `r${i}`,
    promptTokenIds: Array.from({ length: 3 + next(45) }, () => 3 + next(2000)),
    sampling: {
      ...DEFAULT_SAMPLING,
      maxTokens: 4 + next(20),
      // Every third request samples with a seed; the rest are greedy.
      temperature: i % 3 === 0 ? 0.9 : 0,
      topK: i % 3 === 0 ? 40 : 0,
      topP: i % 3 === 0 ? 0.95 : 1,
      seed: 1000 + i,
      ignoreEos: i % 2 === 0,
    },
  }));
}

async function runAll(
  requests: EngineRequest[],
  options: { kvBlocks: number; maxNumBatchedTokens: number; maxNumSeqs: number },
): Promise<{ outputs: Map<string, RequestOutput>; numPreemptions: number; numSteps: number }> {
  const device = await CpuDevice.load(modelDir, {
    numThreads: 2,
    blockSize: BLOCK_SIZE,
    kvCacheBytes: options.kvBlocks * 4 * 2 * BLOCK_SIZE * 4 * 32 * 4,
  });
  expect(device.numKvBlocks).toBe(options.kvBlocks);
  const engine = new Engine(device, {
    maxModelLen: device.config.maxPositionEmbeddings,
    eosTokenIds: device.config.eosTokenIds,
    maxNumBatchedTokens: options.maxNumBatchedTokens,
    maxNumSeqs: options.maxNumSeqs,
  });
  for (const request of requests) engine.addRequest(request);
  const outputs = new Map<string, RequestOutput>();
  const stats = await engine.run((output) => outputs.set(output.requestId, output));
  device.close();
  return { outputs, numPreemptions: stats.numPreemptions, numSteps: stats.numSteps };
}

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'seesaw-engine-'));
  modelDir = join(workDir, 'tiny');
  await generateCheckpoint({ shape: 'tiny', seed: 3, dtype: 'bf16', outDir: modelDir });
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe('engine on a real tiny model', () => {
  it('gives every request the same tokens batched, chunked and preempted as alone', async () => {
    const requests = makeRequests(42);
    const alone = new Map<string, RequestOutput>();
    for (const request of requests) {
      const { outputs } = await runAll([request], { kvBlocks: 64, maxNumBatchedTokens: 512, maxNumSeqs: 1 });
      alone.set(request.requestId, outputs.get(request.requestId)!);
    }

    const scenarios = {
      continuousBatching: { kvBlocks: 256, maxNumBatchedTokens: 512, maxNumSeqs: 256 },
      chunkedPrefill: { kvBlocks: 256, maxNumBatchedTokens: 7, maxNumSeqs: 256 },
      preemption: { kvBlocks: 12, maxNumBatchedTokens: 64, maxNumSeqs: 256 },
    };
    for (const [name, options] of Object.entries(scenarios)) {
      const { outputs, numPreemptions, numSteps } = await runAll(requests, options);
      if (name === 'preemption') expect(numPreemptions).toBeGreaterThan(0);
      if (name === 'chunkedPrefill') expect(numSteps).toBeGreaterThan(requests.length * 3);
      for (const request of requests) {
        const expected = alone.get(request.requestId)!;
        const actual = outputs.get(request.requestId)!;
        expect({
          name,
          id: request.requestId,
          tokens: actual.outputTokenIds,
          reason: actual.finishReason,
        }).toEqual({
          name,
          id: request.requestId,
          tokens: expected.outputTokenIds,
          reason: expected.finishReason,
        });
      }
    }
  });
});
