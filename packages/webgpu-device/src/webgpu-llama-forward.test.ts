import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildForwardBatch, CpuDevice, loadModelWeights } from '@seesaw/gpu-actor';
import { Checkpoint, generateCheckpoint, loadReferenceWeights, ReferenceModel } from '@seesaw/model';
import type { StepSeq } from '@seesaw/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GpuKvCache } from './gpu-kv-cache.ts';
import { WebGpuKernels } from './webgpu-kernels.ts';
import { WebGpuLlamaForward } from './webgpu-llama-forward.ts';
import { GPU_TOLERANCE, gpuForTests, relativeError } from './webgpu-test-support.ts';

const gpu = await gpuForTests();
const BLOCK_SIZE = 8;
const NUM_BLOCKS = 32;

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

interface Tracked {
  seqId: number;
  reference: ReferenceModel;
  tokens: number[];
  numCached: number;
  blockTable: number[];
}

let workDir = '';
beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'seesaw-webgpu-forward-'));
  await generateCheckpoint({ shape: 'tiny', seed: 11, dtype: 'f32', outDir: join(workDir, 'tiny-f32') });
  await generateCheckpoint({
    shape: 'tiny',
    seed: 7,
    dtype: 'bf16',
    outDir: join(workDir, 'tiny-bf16-bias-tied'),
    attentionBias: true,
    tieWordEmbeddings: true,
  });
}, 60_000);
afterAll(() => {
  rmSync(workDir, { recursive: true, force: true });
  gpu?.device.destroy();
});

describe.skipIf(gpu === null).each(['tiny-f32', 'tiny-bf16-bias-tied'])(
  'WebGPU forward pass (%s)',
  (name) => {
    it('logits match the float64 reference and greedy tokens the CPU engine: batched prefill, decode, chunked prompt', async () => {
      const dir = join(workDir, name);
      const checkpoint = Checkpoint.open(dir);
      const config = checkpoint.config;
      const referenceWeights = loadReferenceWeights(checkpoint);
      const kernels = new WebGpuKernels(gpu!.device);
      const forward = new WebGpuLlamaForward(kernels, config, loadModelWeights(checkpoint));
      checkpoint.close();
      const cache = new GpuKvCache(kernels, config, NUM_BLOCKS, BLOCK_SIZE);
      const cpu = await CpuDevice.load(dir, {
        numThreads: 1,
        kvCacheBytes: 16 * 1024 * 1024,
        blockSize: BLOCK_SIZE,
      });

      // Blocks from the top down, so block tables are neither contiguous nor ascending.
      let nextBlock = NUM_BLOCKS - 1;
      let seed = 4242;
      const randomToken = () => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed % config.vocabSize;
      };
      const track = (seqId: number, promptLength: number): Tracked => ({
        seqId,
        reference: new ReferenceModel(config, referenceWeights),
        tokens: Array.from({ length: promptLength }, randomToken),
        numCached: 0,
        blockTable: [],
      });
      const greedy = { temperature: 0, topP: 1, topK: 0, seed: 0 };
      let stepId = 0;
      const runStep = async (work: Array<{ seq: Tracked; numTokens: number }>, isNew: boolean) => {
        const seqs: StepSeq[] = work.map(({ seq, numTokens }) => {
          while (seq.blockTable.length * BLOCK_SIZE < seq.numCached + numTokens)
            seq.blockTable.push(nextBlock--);
          return {
            seqId: seq.seqId,
            tokenIds: seq.tokens.slice(seq.numCached, seq.numCached + numTokens),
            startPos: seq.numCached,
            blockTable: [...seq.blockTable],
            isSampled: true,
            outputIndex: 0,
          };
        });
        const logits = await forward.run(buildForwardBatch(seqs, BLOCK_SIZE, NUM_BLOCKS), cache);
        const onCpu = await cpu.execute({
          stepId: stepId++,
          addedSeqs: isNew ? work.map(({ seq }) => ({ seqId: seq.seqId, sampling: greedy })) : [],
          releasedSeqIds: [],
          seqs,
        });
        const V = config.vocabSize;
        work.forEach(({ seq, numTokens }, i) => {
          const expected = seq.reference.forward(seq.tokens.slice(seq.numCached, seq.numCached + numTokens));
          seq.numCached += numTokens;
          const last = expected[expected.length - 1];
          const row = logits.subarray(i * V, (i + 1) * V);
          expect(relativeError(row, last)).toBeLessThan(GPU_TOLERANCE);
          expect(argmax(row)).toBe(onCpu.sampled[i].tokenId);
          seq.tokens.push(argmax(row));
        });
        // Greedy sampling on the GPU draws the same ids. Running the step again rewrites its K/V
        // slots with the same bits, so the cache is unchanged.
        const ids = await forward.runGreedy(buildForwardBatch(seqs, BLOCK_SIZE, NUM_BLOCKS), cache);
        expect(Array.from(ids)).toEqual(onCpu.sampled.map((s) => s.tokenId));
        return logits;
      };

      const seqs = [track(0, 1), track(1, 13), track(2, 29)];
      const prompt1 = seqs[1].tokens.slice();
      const batchedPrefill = await runStep(
        seqs.map((seq) => ({ seq, numTokens: seq.tokens.length })),
        true,
      );
      for (let i = 0; i < 4; i++) {
        await runStep(
          seqs.map((seq) => ({ seq, numTokens: 1 })),
          false,
        );
      }
      // A 21-token prompt in chunks of 8, 8 and 5, each beside a decode step of the others.
      const chunked = track(3, 21);
      for (const [i, size] of [8, 8, 5].entries()) {
        await runStep(
          [{ seq: chunked, numTokens: size }, ...seqs.map((seq) => ({ seq, numTokens: 1 }))],
          i === 0,
        );
        if (i < 2) chunked.tokens.pop(); // only the last chunk's token is the model's answer
      }

      // Batch invariance: sequence 1's prompt again, alone, in fresh blocks: the same bits.
      const alone = await forward.run(
        buildForwardBatch(
          [{ seqId: 9, tokenIds: prompt1, startPos: 0, blockTable: [0, 1], isSampled: true, outputIndex: 0 }],
          BLOCK_SIZE,
          NUM_BLOCKS,
        ),
        cache,
      );
      const V = config.vocabSize;
      expect(Array.from(alone)).toEqual(Array.from(batchedPrefill.subarray(V, 2 * V)));
      cpu.close();
    });
  },
);
