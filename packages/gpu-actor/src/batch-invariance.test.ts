// A request's logits are a pure function of the request (docs/determinism.md): bit-identical
// whether it runs alone or among 1..63 random neighbours, with its prompt in one step or in
// chunks of several budgets, on 1 or 2 kernel threads, with f32 or bf16 weights and an f32, bf16
// or f16 KV cache. The target is sampled (temperature 0.8, seeded), so equal logits also give
// equal draws.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCheckpoint } from '@seesaw/model';
import type { StepBatch, StepSeq } from '@seesaw/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { CpuDevice } from './cpu-device.ts';

const BLOCK_SIZE = 8;
const PROMPT = 37;
const DECODES = 4;
const seed = Number(process.env.SEESAW_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`batch-invariance seed ${seed} (replay with SEESAW_TEST_SEED=${seed})`);
let state = seed >>> 0;
const random = () => {
  state = (Math.imul(state, 1103515245) + 12345) >>> 0;
  return state / 2 ** 32;
};

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Seq {
  seqId: number;
  tokens: number[];
  numCached: number;
  blockTable: number[];
  outputs: number;
}

/** Runs the target (seq 0) to PROMPT + DECODES tokens; returns the bits of its sampled logits. */
async function runTarget(
  device: CpuDevice,
  vocab: number,
  target: number[],
  budget: number,
  maxNeighbours: number,
) {
  let nextBlock = 0;
  let nextSeqId = 1;
  let stepId = 0;
  const sampling = { temperature: 0.8, topP: 0.95, topK: 0, seed: 5 };
  const me: Seq = { seqId: 0, tokens: [...target], numCached: 0, blockTable: [], outputs: 0 };
  const others: Seq[] = [];
  const seen = new Set<number>();
  const logits: Uint32Array[] = [];
  const toStepSeq = (seq: Seq, numTokens: number): StepSeq => {
    while (seq.blockTable.length * BLOCK_SIZE < seq.numCached + numTokens) seq.blockTable.push(nextBlock++);
    return {
      seqId: seq.seqId,
      tokenIds: seq.tokens.slice(seq.numCached, seq.numCached + numTokens),
      startPos: seq.numCached,
      blockTable: [...seq.blockTable],
      isSampled: seq.numCached + numTokens === seq.tokens.length,
      outputIndex: seq.outputs,
    };
  };
  while (me.outputs <= DECODES) {
    // New neighbours with random prompts; some keep decoding across steps.
    const wanted = maxNeighbours === 0 ? 0 : Math.floor(random() * (maxNeighbours + 1));
    while (others.length < wanted) {
      const length = 1 + Math.floor(random() * 20);
      const tokens = Array.from({ length }, () => Math.floor(random() * vocab));
      others.push({ seqId: nextSeqId++, tokens, numCached: 0, blockTable: [], outputs: 0 });
    }
    const batch = others.slice(0, wanted);
    const work: Array<[Seq, number]> = batch.map((s) => [
      s,
      Math.min(s.tokens.length - s.numCached, 1 + Math.floor(random() * 9)),
    ]);
    work.splice(Math.floor(random() * (work.length + 1)), 0, [
      me,
      Math.min(budget, me.tokens.length - me.numCached),
    ]);
    const seqs = work.map(([s, n]) => toStepSeq(s, n));
    const step: StepBatch = {
      stepId: stepId++,
      addedSeqs: work
        .filter(([s]) => !seen.has(s.seqId))
        .map(([s]) => ({ seqId: s.seqId, sampling: s === me ? sampling : { ...sampling, seed: s.seqId } })),
      releasedSeqIds: [],
      seqs,
      isLogitsReturned: true,
    };
    for (const [s] of work) seen.add(s.seqId);
    const result = await device.execute(step);
    let row = 0;
    work.forEach(([s, n], i) => {
      s.numCached += n;
      if (!seqs[i].isSampled) return;
      s.tokens.push(result.sampled[row].tokenId);
      s.outputs++;
      if (s === me) logits.push(new Uint32Array(result.logits![row].slice().buffer));
      row++;
    });
  }
  // Neighbours' blocks are never released: the cache is sized for the whole run.
  return { logits, tokens: me.tokens.slice(PROMPT) };
}

describe('a request is bit-identical alone and in any batch (CpuDevice, generated tiny model)', () => {
  for (const [dtype, kvDtype] of [
    ['f32', 'f32'],
    ['bf16', 'f32'],
    ['bf16', 'bf16'],
    ['f32', 'f16'],
  ] as const) {
    it(`${dtype} weights, ${kvDtype} KV: alone vs 1..63 neighbours, prefill budgets 37, 16, 5, 1 and 2 threads`, async () => {
      const dir = mkdtempSync(join(tmpdir(), `seesaw-invariance-${dtype}-`));
      dirs.push(dir);
      await generateCheckpoint({ shape: 'tiny', seed: seed % 1000, dtype, outDir: dir });
      const vocab = 2048;
      const target = Array.from({ length: PROMPT }, () => Math.floor(random() * vocab));
      const alone1 = await CpuDevice.load(dir, {
        numThreads: 1,
        blockSize: BLOCK_SIZE,
        kvCacheBytes: 64 << 20,
        kvDtype,
      });
      const alone = await runTarget(alone1, vocab, target, PROMPT, 0);
      alone1.close();
      expect(alone.logits.length).toBe(DECODES + 1);
      for (const [threads, budget, maxNeighbours] of [
        [1, PROMPT, 63],
        [2, 16, 8],
        [1, 5, 20],
        [2, PROMPT, 63],
      ]) {
        const device = await CpuDevice.load(dir, {
          numThreads: threads,
          blockSize: BLOCK_SIZE,
          kvCacheBytes: 64 << 20,
          kvDtype,
        });
        try {
          const run = await runTarget(device, vocab, target, budget, maxNeighbours);
          const label = `threads ${threads} budget ${budget} neighbours <= ${maxNeighbours}`;
          expect(run.tokens, label).toEqual(alone.tokens);
          for (const [i, bits] of run.logits.entries())
            expect(bits, `${label}, output ${i}`).toEqual(alone.logits[i]);
        } finally {
          device.close();
        }
      }
    }, 120_000);
  }
});
