import { describe, expect, it } from 'vitest';
import { HashingTestDevice } from '../test/hashing-test-device.ts';
import { Engine } from './engine.ts';
import { DEFAULT_SAMPLING } from './sampling-params.ts';

describe('engine phase counters', () => {
  it('splits steps into prefill (any prompt chunk) and decode-only, covering every scheduled token', async () => {
    let clock = 0;
    const device = new HashingTestDevice({ numKvBlocks: 64, blockSize: 4, vocabSize: 50 });
    const engine = new Engine(
      {
        numKvBlocks: device.numKvBlocks,
        blockSize: device.blockSize,
        execute: async (batch) => {
          clock += 10;
          return device.execute(batch);
        },
      },
      { maxModelLen: 200, eosTokenIds: [], maxNumBatchedTokens: 8, clock: () => clock },
    );
    for (let i = 0; i < 3; i++) {
      engine.addRequest({
        requestId: `r${i}`,
        promptTokenIds: Array.from({ length: 10 }, (_, j) => 1 + ((i + j) % 40)),
        sampling: { ...DEFAULT_SAMPLING, maxTokens: 5, temperature: 0, ignoreEos: true },
      });
    }
    const stats = await engine.run();
    // 30 prompt tokens at 8 a step need at least 4 prefill steps; the last 4 tokens of each
    // request's output come from decode steps once every prompt is in.
    expect(stats.numPrefillSteps).toBeGreaterThanOrEqual(4);
    expect(stats.numDecodeSteps).toBeGreaterThanOrEqual(4);
    expect(stats.numPrefillSteps + stats.numDecodeSteps).toBe(stats.numSteps);
    expect(stats.numPrefillStepTokens + stats.numDecodeStepTokens).toBe(stats.numScheduledTokens);
    expect(stats.prefillStepMs + stats.decodeStepMs).toBe(10 * stats.numSteps);
  });
});
