// A Seesaw prefill step's KV write-backs on one WebGPU adapter, three variants interleaved in one
// process (so a shared machine's load drifts over all of them alike):
//   none:    the step alone (greedy ids back), no write-backs;
//   after:   the step, then every sequence's layers copied out at once (the old path: GpuKvSwap.gather);
//   layered: the step with write-backs encoded layer group by layer group (GpuKvWriteBacks), then finish().
// Prints the median step -> last write-back time of each and their ratios; `layered` compute
// against `none` is what the extra submissions cost. The puts are no-ops: the kv-store's copy is
// the same in both write-back variants.
// Usage: pnpm bench:webgpu-write-backs [--shape tiny] [--dtype f32] [--prompts 4] [--prompt-len 128] [--reps 7] [--groups 4]
import { parseArgs } from 'node:util';
import { buildForwardBatch } from '@seesaw/gpu-actor';
import { isModelShapeName } from '@seesaw/model';
import type { StepKvSwap, StepSeq } from '@seesaw/protocol';
import { GpuKvCache } from '../src/gpu-kv-cache.ts';
import { GpuKvSwap } from '../src/gpu-kv-swap.ts';
import { GpuKvWriteBacks, WRITE_BACK_SUBMITS_PER_STEP } from '../src/gpu-kv-write-backs.ts';
import { openBenchForward } from './bench-forward.ts';

const { values } = parseArgs({
  options: {
    shape: { type: 'string', default: 'tiny' },
    dtype: { type: 'string', default: 'f32' },
    prompts: { type: 'string', default: '4' },
    'prompt-len': { type: 'string', default: '128' },
    reps: { type: 'string', default: '7' },
    groups: { type: 'string', default: String(WRITE_BACK_SUBMITS_PER_STEP) },
  },
});
const shape = values.shape;
if (!isModelShapeName(shape)) throw new Error(`--shape must be tiny, small or medium (got ${shape})`);
const dtype = values.dtype as 'bf16' | 'f16' | 'f32';
const numPrompts = Number(values.prompts);
const promptLen = Number(values['prompt-len']);
const reps = Number(values.reps);
const groups = Number(values.groups);
for (const [name, n] of Object.entries({ numPrompts, promptLen, reps, groups })) {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
}

const bench = await openBenchForward(shape, dtype);
try {
  const { config, kernels, forward } = bench;
  const blockSize = 16;
  const blocksPerSeq = Math.ceil(promptLen / blockSize);
  const numBlocks = numPrompts * blocksPerSeq;
  const cache = new GpuKvCache(kernels, config, numBlocks, blockSize);
  const copier = new GpuKvSwap(kernels, cache);
  const seqs: StepSeq[] = Array.from({ length: numPrompts }, (_, s) => ({
    seqId: s,
    tokenIds: Array.from({ length: promptLen }, (_, i) => (s * 7919 + i * 104729) % config.vocabSize),
    startPos: 0,
    blockTable: Array.from({ length: blocksPerSeq }, (_, b) => s * blocksPerSeq + b),
    isSampled: true,
    outputIndex: 0,
  }));
  const swaps: StepKvSwap[] = seqs.map((seq) => ({
    seqId: seq.seqId,
    blockIds: seq.blockTable,
    slotIds: seq.blockTable,
    numTokens: promptLen,
  }));
  const batch = buildForwardBatch(seqs, blockSize, numBlocks);
  const noPut = async () => {};

  const variants = {
    none: async () => {
      await forward.runGreedy(batch, cache);
    },
    after: async () => {
      await forward.runGreedy(batch, cache);
      await Promise.all(swaps.map((swap) => copier.gather(swap)));
    },
    layered: async () => {
      const writeBacks = new GpuKvWriteBacks(kernels, cache, swaps, noPut, groups);
      await forward.runGreedy(batch, cache, writeBacks.onLayerKvWritten);
      await writeBacks.finish();
    },
  };
  type Variant = keyof typeof variants;
  const times: Record<Variant, number[]> = { none: [], after: [], layered: [] };
  const names = Object.keys(variants) as Variant[];
  for (const name of names) await variants[name](); // warm-up: pipelines compiled
  for (let r = 0; r < reps; r++) {
    for (const name of r % 2 === 0 ? names : [...names].reverse()) {
      const start = performance.now();
      await variants[name]();
      times[name].push(performance.now() - start);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const m = Object.fromEntries(names.map((n) => [n, median(times[n])])) as Record<Variant, number>;
  console.log(
    `adapter: ${bench.adapterDescription}; ${shape} ${dtype}, ${config.numLayers} layers, ` +
      `${numPrompts} prompts x ${promptLen} tokens in one prefill step, ${groups} write-back groups, ${reps} reps (medians)`,
  );
  for (const n of names) console.log(`${n.padEnd(8)} ${m[n].toFixed(1)} ms`);
  console.log(`layered / after (step until written back): ${(m.layered / m.after).toFixed(3)}`);
  console.log(`layered / none (write-backs' cost on top of the step): ${(m.layered / m.none).toFixed(3)}`);
  console.log(`after / none: ${(m.after / m.none).toFixed(3)}`);
  cache.destroy();
  forward.destroy();
} finally {
  bench.close();
}
