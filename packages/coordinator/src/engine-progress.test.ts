/**
 * EngineRequest.onProgress: called once per sampled token with the outputs so far, every token
 * included, before the request is reported finished; a request without one runs as before.
 */
import { describe, expect, it } from 'vitest';
import { HashingTestDevice } from '../test/hashing-test-device.ts';
import { Engine } from './engine.ts';
import type { EngineRequest, RequestOutput } from './request.ts';
import { DEFAULT_SAMPLING } from './sampling-params.ts';

const VOCAB = 40;

function makeEngine(numKvBlocks: number) {
  const device = new HashingTestDevice({ numKvBlocks, blockSize: 4, vocabSize: VOCAB });
  return new Engine(device, { maxModelLen: 96, eosTokenIds: [0], maxNumBatchedTokens: 16 });
}

describe('EngineRequest.onProgress', () => {
  it('reports every sampled token in order, the last before the finish, under batching and preemption', async () => {
    const seed = Date.now() % 100_000;
    console.log(`engine-progress seed ${seed}`);
    const progress = new Map<string, number[][]>();
    const finished = new Map<string, RequestOutput>();
    const requests: EngineRequest[] = Array.from({ length: 6 }, (_, i) => ({
      requestId: `r${i}`,
      promptTokenIds: Array.from({ length: 5 + i * 3 }, (_, k) => 1 + ((seed + i * 7 + k) % (VOCAB - 1))),
      sampling: { ...DEFAULT_SAMPLING, maxTokens: 6 + i, temperature: 0.7, seed: seed + i, ignoreEos: true },
      onProgress: (ids) => {
        expect(finished.has(`r${i}`)).toBe(false);
        progress.set(`r${i}`, [...(progress.get(`r${i}`) ?? []), [...ids]]);
      },
    }));
    // Few KV blocks: requests get preempted and recomputed; progress still counts each token once.
    const engine = makeEngine(10);
    for (const request of requests) engine.addRequest(request);
    await engine.run((output) => finished.set(output.requestId, output));
    for (const request of requests) {
      const output = finished.get(request.requestId)!;
      const reports = progress.get(request.requestId)!;
      expect(reports).toEqual(output.outputTokenIds.map((_, k) => output.outputTokenIds.slice(0, k + 1)));
    }
  });

  it('nothing changes for requests without a hook', async () => {
    const request = (onProgress?: EngineRequest['onProgress']): EngineRequest => ({
      requestId: 'a',
      promptTokenIds: [3, 4, 5],
      sampling: { ...DEFAULT_SAMPLING, maxTokens: 8, temperature: 0, ignoreEos: true },
      ...(onProgress ? { onProgress } : {}),
    });
    const outputs: number[][] = [];
    for (const hook of [undefined, () => {}]) {
      const engine = makeEngine(32);
      engine.addRequest(request(hook));
      await engine.run((output) => outputs.push(output.outputTokenIds));
    }
    expect(outputs[0]).toEqual(outputs[1]);
    expect(outputs[0]).toHaveLength(8);
  });
});
