import type { StepBatch } from '@seesaw/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { HashingTestDevice, hashNextToken } from '../test/hashing-test-device.ts';
import { Engine, type EngineOptions } from './engine.ts';
import { type EngineRequest, type RequestOutput, RequestRejectedError } from './request.ts';
import { DEFAULT_SAMPLING } from './sampling-params.ts';

const VOCAB = 40;
const EOS = 0;
const MAX_MODEL_LEN = 96;

/** mulberry32: a small seeded PRNG so every run sees the same "random" workload. */
function makeRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function randomRequests(seed: number, count: number, maxPrompt = 40, maxTokens = 40): EngineRequest[] {
  const random = makeRandom(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  return Array.from({ length: count }, (_, i) => ({
    requestId: `req-${seed}-${i}`,
    // Token 0 is EOS: keep prompts free of it so they read like real prompts.
    promptTokenIds: Array.from({ length: int(1, maxPrompt) }, () => int(1, VOCAB - 1)),
    sampling: {
      ...DEFAULT_SAMPLING,
      maxTokens: int(1, maxTokens),
      temperature: random() < 0.3 ? 0 : 0.8,
      seed: int(0, 2 ** 40),
      stopTokenIds: random() < 0.3 ? [int(1, VOCAB - 1)] : [],
      ignoreEos: random() < 0.3,
    },
  }));
}

interface Setup {
  numKvBlocks: number;
  blockSize: number;
  options?: Partial<EngineOptions>;
}

function makeEngine({ numKvBlocks, blockSize, options }: Setup, onBatch?: (batch: StepBatch) => void) {
  const device = new HashingTestDevice({ numKvBlocks, blockSize, vocabSize: VOCAB, onBatch });
  const engine = new Engine(device, { maxModelLen: MAX_MODEL_LEN, eosTokenIds: [EOS], ...options });
  return { device, engine };
}

/** Each request alone on a cache far bigger than it needs, with a budget above its prompt. */
async function referenceOutputs(requests: EngineRequest[]): Promise<Map<string, RequestOutput>> {
  const outputs = new Map<string, RequestOutput>();
  for (const request of requests) {
    const { engine } = makeEngine({ numKvBlocks: 64, blockSize: 16, options: { maxNumBatchedTokens: 4096 } });
    engine.addRequest(request);
    const stats = await engine.run((out) => outputs.set(out.requestId, out));
    expect(stats.numPreemptions).toBe(0);
    expect(stats.numSteps).toBe(outputs.get(request.requestId)!.outputTokenIds.length);
  }
  return outputs;
}

async function runAll(setup: Setup, requests: EngineRequest[], onBatch?: (batch: StepBatch) => void) {
  const { engine, device } = makeEngine(setup, onBatch);
  for (const request of requests) engine.addRequest(request);
  const outputs = new Map<string, RequestOutput>();
  const stats = await engine.run((out) => {
    expect(outputs.has(out.requestId)).toBe(false);
    outputs.set(out.requestId, out);
  });
  expect(engine.hasUnfinishedRequests()).toBe(false);
  expect(engine.scheduler.allocator.numFreeBlocks).toBe(setup.numKvBlocks);
  return { outputs, stats, device };
}

function expectSameTokens(actual: Map<string, RequestOutput>, expected: Map<string, RequestOutput>) {
  expect(actual.size).toBe(expected.size);
  for (const [requestId, want] of expected) {
    const got = actual.get(requestId)!;
    expect({ requestId, tokens: got.outputTokenIds, reason: got.finishReason }).toEqual({
      requestId,
      tokens: want.outputTokenIds,
      reason: want.finishReason,
    });
  }
}

describe('Engine on a KV-checking device', () => {
  const requests = randomRequests(1, 40);
  let reference = new Map<string, RequestOutput>();
  beforeAll(async () => {
    reference = await referenceOutputs(requests);
  });

  it('runs each request alone exactly as the hash model and the stop rules say', () => {
    for (const request of requests) {
      const { promptTokenIds, sampling } = request;
      const out = reference.get(request.requestId)!;
      const context = [...promptTokenIds];
      const stops = new Set([...sampling.stopTokenIds, ...(sampling.ignoreEos ? [] : [EOS])]);
      out.outputTokenIds.forEach((tokenId, i) => {
        const deviceSampling = { temperature: sampling.temperature, topP: 1, topK: 0, seed: sampling.seed! };
        expect(tokenId).toBe(hashNextToken(context, deviceSampling, i, VOCAB));
        context.push(tokenId);
        if (i < out.outputTokenIds.length - 1) expect(stops.has(tokenId)).toBe(false);
      });
      const numOutputs = out.outputTokenIds.length;
      const isLengthCapped = numOutputs === sampling.maxTokens || context.length === MAX_MODEL_LEN;
      expect(out.finishReason).toBe(stops.has(context[context.length - 1]) ? 'stop' : 'length');
      if (out.finishReason === 'length') expect(isLengthCapped).toBe(true);
    }
  });

  it('produces a workload with every finish path (sanity of the fixture)', async () => {
    const outputs = [...reference.values()];
    expect(outputs.filter((o) => o.finishReason === 'stop').length).toBeGreaterThan(3);
    expect(outputs.filter((o) => o.finishReason === 'length').length).toBeGreaterThan(3);
  });

  it('continuous batching gives the same tokens as each request alone', async () => {
    const batchSizes: number[] = [];
    const { outputs, stats } = await runAll({ numKvBlocks: 400, blockSize: 16 }, requests, (b) =>
      batchSizes.push(b.seqs.length),
    );
    expectSameTokens(outputs, reference);
    expect(Math.max(...batchSizes)).toBeGreaterThan(10);
    expect(stats.numPreemptions).toBe(0);
    expect(stats.numPromptTokensComputed).toBe(requests.reduce((n, r) => n + r.promptTokenIds.length, 0));
  });

  it('small token budgets (chunked prefill) give the same tokens and respect the budget', async () => {
    for (const budget of [1, 3, 7]) {
      let numChunked = 0;
      const { outputs } = await runAll(
        { numKvBlocks: 400, blockSize: 4, options: { maxNumBatchedTokens: budget } },
        requests,
        (batch) => {
          expect(batch.seqs.reduce((n, s) => n + s.tokenIds.length, 0)).toBeLessThanOrEqual(budget);
          numChunked += batch.seqs.filter((s) => !s.isSampled).length;
        },
      );
      expectSameTokens(outputs, reference);
      expect(numChunked).toBeGreaterThan(0);
    }
  });

  it('tiny caches (forced preemption) give the same tokens', async () => {
    for (const [numKvBlocks, blockSize, budget] of [
      [12, 8, 512],
      [25, 4, 16],
      [100, 1, 9],
    ]) {
      const { outputs, stats, device } = await runAll(
        { numKvBlocks, blockSize, options: { maxNumBatchedTokens: budget } },
        requests,
      );
      // Freed blocks did get reused, so the device's stale-slot checks had work to do.
      expect(device.numBlockReuses).toBeGreaterThan(numKvBlocks);
      expectSameTokens(outputs, reference);
      expect(stats.numPreemptions).toBeGreaterThan(0);
      expect(stats.numRecomputedTokens).toBeGreaterThan(0);
      const numPreempted = [...outputs.values()].reduce((n, o) => n + o.numPreemptions, 0);
      expect(numPreempted).toBe(stats.numPreemptions);
      // Every prompt position counts once as prompt; every output but the last is fed back once;
      // all else is recompute.
      const numPromptTokens = requests.reduce((n, r) => n + r.promptTokenIds.length, 0);
      const numFedBack = [...outputs.values()].reduce((n, o) => n + o.outputTokenIds.length - 1, 0);
      expect(stats.numPromptTokensComputed).toBe(numPromptTokens);
      expect(stats.numScheduledTokens).toBe(numPromptTokens + numFedBack + stats.numRecomputedTokens);
    }
  });

  it('gives the same tokens across random cache sizes, budgets, block sizes and seq caps', async () => {
    const random = makeRandom(99);
    for (let trial = 0; trial < 12; trial++) {
      const blockSize = 1 + Math.floor(random() * 8);
      // The smallest cache that holds MAX_MODEL_LEN tokens, up to 3x that.
      const minBlocks = Math.ceil(MAX_MODEL_LEN / blockSize);
      const numKvBlocks = minBlocks + Math.floor(random() * 2 * minBlocks);
      const options = {
        maxNumBatchedTokens: 1 + Math.floor(random() * 64),
        maxNumSeqs: 1 + Math.floor(random() * 12),
        watermark: random() * 0.1,
      };
      const { outputs } = await runAll({ numKvBlocks, blockSize, options }, requests);
      expectSameTokens(outputs, reference);
    }
  });

  it('runs requests added while running, including from the finish callback', async () => {
    const [first, ...rest] = requests.slice(0, 10);
    const { engine } = makeEngine({ numKvBlocks: 30, blockSize: 4, options: { maxNumBatchedTokens: 32 } });
    engine.addRequest(first);
    const outputs = new Map<string, RequestOutput>();
    const pending = [...rest];
    const runDone = engine.run((out) => {
      outputs.set(out.requestId, out);
      const next = pending.shift();
      if (next) engine.addRequest(next);
    });
    const late = requests[10];
    engine.addRequest(late); // while run() awaits the device
    await runDone;
    const all = new Map([...reference].filter(([id]) => outputs.has(id)));
    expect(outputs.size).toBe(11);
    expectSameTokens(outputs, all);
  });

  it('sends each sequence its sampling once per admission and releases every sequence', async () => {
    const added: number[] = [];
    const released: number[] = [];
    const { device, stats } = await runAll({ numKvBlocks: 25, blockSize: 4 }, requests, (batch) => {
      added.push(...batch.addedSeqs.map((a) => a.seqId));
      released.push(...batch.releasedSeqIds);
    });
    expect(added.length).toBe(requests.length + stats.numPreemptions);
    // Only the last step's finished sequences are still to be released.
    expect(device.numLiveSeqs).toBe(added.length - released.length);
    expect(new Set(added).size).toBe(requests.length);
    expect(device.numSlotReads).toBeGreaterThan(0);
  });

  it('stamps arrival, first-token and finish times from its clock and accounts busy time', async () => {
    let now = 1000;
    const device = new HashingTestDevice({ numKvBlocks: 50, blockSize: 4, vocabSize: VOCAB });
    const slowDevice = {
      numKvBlocks: device.numKvBlocks,
      blockSize: device.blockSize,
      execute: async (batch: StepBatch) => {
        now += 10;
        return device.execute(batch);
      },
    };
    const engine = new Engine(slowDevice, { maxModelLen: 64, eosTokenIds: [], clock: () => now });
    engine.addRequest({
      requestId: 'a',
      promptTokenIds: [1, 2, 3],
      sampling: { ...DEFAULT_SAMPLING, maxTokens: 3 },
    });
    const outputs: RequestOutput[] = [];
    const stats = await engine.run((out) => outputs.push(out));
    expect(outputs[0]).toMatchObject({
      arrivalMs: 1000,
      firstTokenMs: 1010,
      finishMs: 1030,
      numPreemptions: 0,
    });
    expect(stats).toMatchObject({
      numSteps: 3,
      numOutputTokens: 3,
      numFinishedRequests: 1,
      busyMs: 30,
      idleMs: 0,
    });
  });

  it('rejects impossible requests, resolves null seeds, and caps the length at the cache capacity', async () => {
    const { engine } = makeEngine({ numKvBlocks: 4, blockSize: 8 });
    expect(engine.maxModelLen).toBe(32);
    const sampling = { ...DEFAULT_SAMPLING, seed: null };
    expect(() => engine.addRequest({ requestId: 'e', promptTokenIds: [], sampling })).toThrow(
      RequestRejectedError,
    );
    const tooLong = Array.from({ length: 32 }, () => 1);
    expect(() => engine.addRequest({ requestId: 'l', promptTokenIds: tooLong, sampling })).toThrow(
      RequestRejectedError,
    );
    expect(engine.hasUnfinishedRequests()).toBe(false);

    const seeds: number[] = [];
    const { engine: seeded } = makeEngine({ numKvBlocks: 4, blockSize: 8 }, (batch) =>
      seeds.push(...batch.addedSeqs.map((a) => a.sampling.seed)),
    );
    seeded.addRequest({ requestId: 'a', promptTokenIds: [1], sampling: { ...sampling, maxTokens: 1 } });
    seeded.addRequest({ requestId: 'b', promptTokenIds: [1], sampling: { ...sampling, maxTokens: 1 } });
    await seeded.run();
    expect(seeds).toHaveLength(2);
    for (const seed of seeds) expect(Number.isSafeInteger(seed)).toBe(true);
    expect(seeds[0]).not.toBe(seeds[1]);
  });

  it('refuses overlapping steps', async () => {
    const { engine } = makeEngine({ numKvBlocks: 8, blockSize: 4 });
    engine.addRequest(requests[0]);
    const first = engine.step();
    await expect(engine.step()).rejects.toThrow(/while a step is running/);
    await first;
  });
});
