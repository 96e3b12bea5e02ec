/**
 * Host-side cost of the engine loop: a device that answers instantly, so all the time
 * measured is scheduling + applying results. Run: pnpm tsx packages/coordinator/bench/scheduler-bench.ts
 */

import { DEFAULT_SAMPLING, Engine, type ExecutionDevice } from '@seesaw/coordinator';
import type { StepBatch, StepResult } from '@seesaw/protocol';

class InstantDevice implements ExecutionDevice {
  constructor(
    readonly numKvBlocks: number,
    readonly blockSize: number,
  ) {}
  async execute(batch: StepBatch): Promise<StepResult> {
    const sampled = [];
    for (const seq of batch.seqs) if (seq.isSampled) sampled.push({ seqId: seq.seqId, tokenId: 7 });
    return { stepId: batch.stepId, sampled };
  }
}

async function bench(label: string, numKvBlocks: number, numRequests: number): Promise<void> {
  let state = 1;
  const random = (): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
  const engine = new Engine(new InstantDevice(numKvBlocks, 16), {
    maxModelLen: 4096,
    eosTokenIds: [],
    maxNumBatchedTokens: 512,
    maxNumSeqs: 256,
  });
  for (let i = 0; i < numRequests; i++) {
    const promptTokenIds = Array.from({ length: 64 + Math.floor(random() * 448) }, () => 1);
    engine.addRequest({
      requestId: `r${i}`,
      promptTokenIds,
      sampling: { ...DEFAULT_SAMPLING, maxTokens: 16 + Math.floor(random() * 240), seed: i },
    });
  }
  const start = performance.now();
  const stats = await engine.run();
  const wallMs = performance.now() - start;
  const tokens = stats.numScheduledTokens;
  console.log(
    `${label}: ${numRequests} requests, ${stats.numSteps} steps, ${tokens} tokens, ` +
      `${stats.numPreemptions} preemptions; ${wallMs.toFixed(0)} ms wall, ` +
      `${((wallMs * 1000) / stats.numSteps).toFixed(1)} us/step, ${((wallMs * 1e6) / tokens).toFixed(0)} ns/token`,
  );
}

await bench('roomy cache (16k blocks)', 16_384, 5_000);
await bench('tight cache (2k blocks)', 2_048, 5_000);
