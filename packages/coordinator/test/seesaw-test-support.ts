import { expect } from 'vitest';
import { Engine } from '../src/engine.ts';
import type { EngineRequest, RequestOutput } from '../src/request.ts';
import { DEFAULT_SAMPLING } from '../src/sampling-params.ts';
import { HashingTestDevice } from './hashing-test-device.ts';

// Shared by the seesaw tests (not a test file): seeded workloads and the static-engine reference.

export const VOCAB = 50;
export const EOS = 0;

/** mulberry32: a small seeded PRNG, so a failing workload can be replayed from its printed seed. */
export function makeRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

export interface WorkloadShape {
  count: number;
  maxPrompt: number;
  maxTokens: number;
  /** Share of requests that may stop early on EOS / a stop token (default 0.5). */
  stopShare?: number;
}

export function randomWorkload(seed: number, shape: WorkloadShape): EngineRequest[] {
  const random = makeRandom(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const stopShare = shape.stopShare ?? 0.5;
  return Array.from({ length: shape.count }, (_, i) => {
    const canStop = random() < stopShare;
    return {
      requestId: `r${seed}-${i}`,
      // Token 0 is EOS: prompts avoid it.
      promptTokenIds: Array.from({ length: int(1, shape.maxPrompt) }, () => int(1, VOCAB - 1)),
      sampling: {
        ...DEFAULT_SAMPLING,
        maxTokens: int(1, shape.maxTokens),
        temperature: random() < 0.3 ? 0 : 0.8,
        seed: int(0, 2 ** 40),
        stopTokenIds: canStop && random() < 0.5 ? [int(1, VOCAB - 1)] : [],
        ignoreEos: !canStop,
      },
    };
  });
}

/** What the static engine (one configuration, a cache big enough for everything) generates. */
export async function staticReference(
  requests: readonly EngineRequest[],
  maxModelLen: number,
): Promise<Map<string, RequestOutput>> {
  const device = new HashingTestDevice({ numKvBlocks: 4096, blockSize: 16, vocabSize: VOCAB });
  const engine = new Engine(device, { maxModelLen, eosTokenIds: [EOS], maxNumBatchedTokens: 8192 });
  for (const request of requests) engine.addRequest(request);
  const outputs = new Map<string, RequestOutput>();
  await engine.run((out) => outputs.set(out.requestId, out));
  return outputs;
}

/** Collects outputs, failing on a request that finishes twice. */
export function outputCollector(): {
  outputs: Map<string, RequestOutput>;
  onFinished: (out: RequestOutput) => void;
} {
  const outputs = new Map<string, RequestOutput>();
  return {
    outputs,
    onFinished: (out) => {
      expect(outputs.has(out.requestId), `${out.requestId} finished twice`).toBe(false);
      outputs.set(out.requestId, out);
    },
  };
}

export function expectSameOutputs(
  actual: Map<string, RequestOutput>,
  expected: Map<string, RequestOutput>,
): void {
  expect(actual.size).toBe(expected.size);
  for (const [requestId, want] of expected) {
    const got = actual.get(requestId);
    expect(got, `${requestId} missing`).toBeDefined();
    expect(got!.outputTokenIds, requestId).toEqual(want.outputTokenIds);
    expect(got!.finishReason, requestId).toBe(want.finishReason);
  }
}
