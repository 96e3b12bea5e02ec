// End-to-end throughput of the WebGPU forward pass on one adapter, on a generated checkpoint:
// all prompts prefilled in one step, then greedy decode steps of the whole batch.
// Usage: pnpm bench:webgpu-e2e [--shape medium] [--dtype bf16] [--prompts 32] [--prompt-len 128] [--output 64]
// It drives WebGpuLlamaForward directly (not yet `seesaw bench --backend webgpu`: see README).
import { parseArgs } from 'node:util';
import { buildForwardBatch } from '@seesaw/gpu-actor';
import { isModelShapeName } from '@seesaw/model';
import type { StepSeq } from '@seesaw/protocol';
import { GpuKvCache } from '../src/gpu-kv-cache.ts';
import { openBenchForward } from './bench-forward.ts';

const { values } = parseArgs({
  options: {
    shape: { type: 'string', default: 'medium' },
    dtype: { type: 'string', default: 'bf16' },
    prompts: { type: 'string', default: '32' },
    'prompt-len': { type: 'string', default: '128' },
    output: { type: 'string', default: '64' },
  },
});
const shape = values.shape;
if (!isModelShapeName(shape)) throw new Error(`--shape must be tiny, small or medium (got ${shape})`);
const dtype = values.dtype as 'bf16' | 'f16' | 'f32';
const numPrompts = Number(values.prompts);
const promptLen = Number(values['prompt-len']);
const outputLen = Number(values.output);
for (const [name, n] of Object.entries({ numPrompts, promptLen, outputLen })) {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
}

const bench = await openBenchForward(shape, dtype);
try {
  const { config, kernels, forward } = bench;
  const blockSize = 16;
  const blocksPerSeq = Math.ceil((promptLen + outputLen) / blockSize);
  const numBlocks = numPrompts * blocksPerSeq;
  const cache = new GpuKvCache(kernels, config, numBlocks, blockSize);
  const seqs = Array.from({ length: numPrompts }, (_, s) => ({
    tokens: Array.from({ length: promptLen }, (_, i) => (s * 7919 + i * 104729) % config.vocabSize),
    blockTable: Array.from({ length: blocksPerSeq }, (_, b) => s * blocksPerSeq + b),
  }));
  // Greedy sampling on the GPU: per step only the batch metadata goes up and the ids come back.
  const step = async (work: StepSeq[]) => {
    const ids = await forward.runGreedy(buildForwardBatch(work, blockSize, numBlocks), cache);
    work.forEach((w, i) => {
      seqs[w.seqId].tokens.push(ids[i]);
    });
  };

  const start = performance.now();
  await step(
    seqs.map((seq, seqId) => ({
      seqId,
      tokenIds: seq.tokens.slice(),
      startPos: 0,
      blockTable: seq.blockTable,
      isSampled: true,
      outputIndex: 0,
    })),
  );
  const prefillSeconds = (performance.now() - start) / 1000;
  for (let o = 1; o < outputLen; o++) {
    await step(
      seqs.map((seq, seqId) => ({
        seqId,
        tokenIds: seq.tokens.slice(-1),
        startPos: seq.tokens.length - 1,
        blockTable: seq.blockTable,
        isSampled: true,
        outputIndex: o,
      })),
    );
  }
  const totalSeconds = (performance.now() - start) / 1000;
  console.log(`adapter: ${bench.adapterDescription}`);
  console.log(
    `${shape} ${dtype}: ${numPrompts} prompts x ${promptLen} tokens, ${outputLen} output tokens each`,
  );
  console.log(`prefill ${prefillSeconds.toFixed(2)} s, total ${totalSeconds.toFixed(2)} s`);
  console.log(`output tokens/s ${((numPrompts * outputLen) / totalSeconds).toFixed(1)}`);
  console.log(`total tokens/s ${((numPrompts * (promptLen + outputLen)) / totalSeconds).toFixed(1)}`);
} finally {
  bench.close();
}
