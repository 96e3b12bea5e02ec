/**
 * Presence/frequency penalties on the real engine and tiny model: the device counts a sequence's
 * outputs from the step messages, so batching, chunked prefill and preemption by recompute (the
 * sequence re-learnt with its output history) must not change a single token, greedy or seeded.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SAMPLING, Engine, type EngineRequest, type RequestOutput } from '@seesaw/coordinator';
import { CpuDevice } from '@seesaw/gpu-actor';
import { generateCheckpoint } from '@seesaw/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BLOCK_SIZE = 8;
let modelDir = '';
let workDir = '';

function penalizedRequests(): EngineRequest[] {
  return Array.from({ length: 8 }, (_, i) => ({
    requestId: `r${i}`,
    promptTokenIds: Array.from({ length: 4 + ((i * 7) % 20) }, (_, j) => 3 + ((i * 131 + j * 17) % 2000)),
    sampling: {
      ...DEFAULT_SAMPLING,
      maxTokens: 24,
      // Odd requests sample with a seed; even ones are greedy. Negative penalties make repeats
      // likely, so the counts decide many choices.
      temperature: i % 2 === 1 ? 0.8 : 0,
      seed: 500 + i,
      ignoreEos: true,
      presencePenalty: i % 4 < 2 ? -1.5 : 0.7,
      frequencyPenalty: i % 3 === 0 ? 0.4 : -0.3,
    },
  }));
}

async function runAll(
  requests: EngineRequest[],
  options: { kvBlocks: number; maxNumBatchedTokens: number; maxNumSeqs: number },
): Promise<{ outputs: Map<string, RequestOutput>; numPreemptions: number }> {
  // Tiny model: 4 layers x K,V x BLOCK_SIZE tokens x 4 KV heads x 32 dims x f32 per block.
  const device = await CpuDevice.load(modelDir, {
    numThreads: 1,
    blockSize: BLOCK_SIZE,
    kvCacheBytes: options.kvBlocks * 4 * 2 * BLOCK_SIZE * 4 * 32 * 4,
  });
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
  return { outputs, numPreemptions: stats.numPreemptions };
}

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'seesaw-penalties-'));
  modelDir = join(workDir, 'tiny');
  await generateCheckpoint({ shape: 'tiny', seed: 3, dtype: 'bf16', outDir: modelDir });
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe('penalties on the engine', () => {
  it('give the same tokens batched, chunked and preempted as alone', async () => {
    const requests = penalizedRequests();
    const alone = new Map<string, RequestOutput>();
    for (const request of requests) {
      const { outputs } = await runAll([request], { kvBlocks: 64, maxNumBatchedTokens: 512, maxNumSeqs: 1 });
      alone.set(request.requestId, outputs.get(request.requestId)!);
    }
    // The penalties act: some answer repeats a token (negative ones) and they differ from none.
    const unpenalized = requests.map((r) => ({
      ...r,
      sampling: { ...r.sampling, presencePenalty: 0, frequencyPenalty: 0 },
    }));
    const { outputs: plain } = await runAll(unpenalized, {
      kvBlocks: 256,
      maxNumBatchedTokens: 512,
      maxNumSeqs: 256,
    });
    const changed = requests.filter(
      (r) =>
        JSON.stringify(plain.get(r.requestId)!.outputTokenIds) !==
        JSON.stringify(alone.get(r.requestId)!.outputTokenIds),
    );
    expect(changed.length).toBeGreaterThan(requests.length / 2);

    const scenarios = {
      batched: { kvBlocks: 256, maxNumBatchedTokens: 512, maxNumSeqs: 256 },
      chunkedPrefill: { kvBlocks: 256, maxNumBatchedTokens: 7, maxNumSeqs: 256 },
      preemption: { kvBlocks: 12, maxNumBatchedTokens: 64, maxNumSeqs: 256 },
    };
    for (const [name, options] of Object.entries(scenarios)) {
      const { outputs, numPreemptions } = await runAll(requests, options);
      if (name === 'preemption') expect(numPreemptions).toBeGreaterThan(0);
      for (const request of requests) {
        expect({
          name,
          id: request.requestId,
          tokens: outputs.get(request.requestId)!.outputTokenIds,
        }).toEqual({
          name,
          id: request.requestId,
          tokens: alone.get(request.requestId)!.outputTokenIds,
        });
      }
    }
  });
});
