import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildForwardBatch, loadModelWeights, type ModelWeights } from '@seesaw/gpu-actor';
import { Checkpoint, generateCheckpoint, type ModelConfig } from '@seesaw/model';
import type { StepSeq } from '@seesaw/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GpuKvCache } from './gpu-kv-cache.ts';
import { StepBufferPool } from './step-buffer-pool.ts';
import { WebGpuKernels } from './webgpu-kernels.ts';
import { WebGpuLlamaForward } from './webgpu-llama-forward.ts';
import { gpuForTests } from './webgpu-test-support.ts';

const gpu = await gpuForTests();
const BLOCK_SIZE = 8;
const NUM_BLOCKS = 16;

let workDir = '';
beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'seesaw-webgpu-step-buffers-'));
  await generateCheckpoint({ shape: 'tiny', seed: 17, dtype: 'f32', outDir: workDir });
}, 60_000);
afterAll(() => {
  rmSync(workDir, { recursive: true, force: true });
  gpu?.device.destroy();
});

describe.skipIf(gpu === null)('per-step buffer reuse on the GPU', () => {
  it('a pool hands back the same buffer for a name while it is big enough, and a bigger one when not', () => {
    const pool = new StepBufferPool(WebGpuKernels.forContext(gpu!));
    const first = pool.take('qkv', 100);
    expect(pool.take('qkv', 60).buffer).toBe(first.buffer);
    expect(pool.take('qkv', 60).length).toBe(60);
    expect(pool.take('qkv', 100).buffer).toBe(first.buffer);
    expect(pool.take('other', 10).buffer).not.toBe(first.buffer);
    const grown = pool.take('qkv', 101);
    expect(grown.buffer).not.toBe(first.buffer);
    expect(pool.take('qkv', 5).buffer).toBe(grown.buffer);
    expect(pool.numCreated).toBe(3);
    pool.destroy();
  });

  it("steps reuse the first step's activation buffers, with the logits of a forward pass that allocates afresh, bit for bit", async () => {
    const checkpoint = Checkpoint.open(workDir);
    const config: ModelConfig = checkpoint.config;
    const weights: ModelWeights = loadModelWeights(checkpoint);
    checkpoint.close();
    const kernels = WebGpuKernels.forContext(gpu!);
    const reusing = new WebGpuLlamaForward(kernels, config, weights);
    const reusingCache = new GpuKvCache(kernels, config, NUM_BLOCKS, BLOCK_SIZE);
    const freshCache = new GpuKvCache(kernels, config, NUM_BLOCKS, BLOCK_SIZE);
    const token = (i: number) => (i * 104729 + 7) % config.vocabSize;
    const seq = (seqId: number, start: number, length: number, blocks: number[]): StepSeq => ({
      seqId,
      tokenIds: Array.from({ length }, (_, i) => token(seqId * 1000 + start + i)),
      startPos: start,
      blockTable: blocks,
      isSampled: true,
      outputIndex: 0,
    });
    // The largest step first (two prompts), then smaller ones: decodes, a short new prompt.
    const steps: StepSeq[][] = [
      [seq(1, 0, 20, [3, 9, 0]), seq(2, 0, 13, [5, 1])],
      [seq(1, 20, 1, [3, 9, 0]), seq(2, 13, 1, [5, 1])],
      [seq(3, 0, 7, [12]), seq(1, 21, 1, [3, 9, 0])],
      [seq(2, 14, 1, [5, 1]), seq(3, 7, 1, [12, 7])],
    ];
    let createdAfterFirst = 0;
    for (const [i, work] of steps.entries()) {
      const batch = buildForwardBatch(work, BLOCK_SIZE, NUM_BLOCKS);
      const logits = await reusing.run(batch, reusingCache);
      if (i === 0) createdAfterFirst = reusing.numStepBuffersCreated;
      const fresh = new WebGpuLlamaForward(kernels, config, weights);
      const expected = await fresh.run(batch, freshCache);
      fresh.destroy();
      expect(logits.length).toBe(work.length * config.vocabSize);
      expect(logits).toEqual(expected);
    }
    expect(createdAfterFirst).toBeGreaterThan(0);
    expect(reusing.numStepBuffersCreated).toBe(createdAfterFirst);
    reusingCache.destroy();
    freshCache.destroy();
    reusing.destroy();
  }, 60_000);

  it('a decode step of a batch shape seen before creates no buffer, and samples the ids its logits say', async () => {
    const checkpoint = Checkpoint.open(workDir);
    const config: ModelConfig = checkpoint.config;
    const weights: ModelWeights = loadModelWeights(checkpoint);
    checkpoint.close();
    const kernels = WebGpuKernels.forContext(gpu!);
    const forward = new WebGpuLlamaForward(kernels, config, weights);
    const cache = new GpuKvCache(kernels, config, NUM_BLOCKS, BLOCK_SIZE);
    const device = kernels.device;
    const created: number[] = [];
    const createBuffer = device.createBuffer.bind(device);
    device.createBuffer = (descriptor: GPUBufferDescriptor) => {
      created.push(descriptor.usage);
      return createBuffer(descriptor);
    };
    try {
      const tables = [
        [2, 6],
        [4, 11],
        [8, 1],
      ];
      const tokens = [
        [5, 9, 14, 2, 7, 3],
        [11, 8, 1],
        [4, 4, 12, 6, 10],
      ].map((row) => row.map((t) => t % config.vocabSize));
      const prompts = tokens.map((ids, seqId) => ({
        seqId,
        tokenIds: ids,
        startPos: 0,
        blockTable: tables[seqId]!,
        isSampled: true,
        outputIndex: 0,
      }));
      let next = await forward.runGreedy(buildForwardBatch(prompts, BLOCK_SIZE, NUM_BLOCKS), cache);
      const lengths = tokens.map((ids) => ids.length);
      const decodeStep = (outputIndex: number): StepSeq[] =>
        lengths.map((length, seqId) => ({
          seqId,
          tokenIds: [next[seqId]!],
          startPos: length,
          blockTable: tables[seqId]!,
          isSampled: true,
          outputIndex,
        }));
      const numCreated = () => created.length;
      const afterEach: number[] = [];
      const paramsAfterEach: number[] = [];
      for (let outputIndex = 1; outputIndex <= 3; outputIndex++) {
        const step = decodeStep(outputIndex);
        const ids = await forward.runGreedy(buildForwardBatch(step, BLOCK_SIZE, NUM_BLOCKS), cache);
        // Against the logits a forward pass of the same step reads back in full.
        const logits = await forward.run(buildForwardBatch(step, BLOCK_SIZE, NUM_BLOCKS), cache);
        ids.forEach((id, row) => {
          const rowLogits = logits.subarray(row * config.vocabSize, (row + 1) * config.vocabSize);
          expect(rowLogits[id]).toBe(Math.max(...rowLogits));
        });
        next = ids;
        lengths.forEach((_, seqId) => {
          lengths[seqId]! += 1;
        });
        afterEach.push(numCreated());
        paramsAfterEach.push(kernels.numParamBuffersCreated);
      }
      // The first decode step may meet new shapes; the second and third create no buffer at all:
      // no metadata, activation, parameter or read-back staging buffer.
      expect(afterEach[2]).toBe(afterEach[1]);
      expect(paramsAfterEach[2]).toBe(paramsAfterEach[1]);
      expect(paramsAfterEach[1]).toBeGreaterThan(0);
      expect(kernels.numReadStagingsCreated).toBeGreaterThan(0);
    } finally {
      device.createBuffer = createBuffer;
      cache.destroy();
      forward.destroy();
    }
  }, 60_000);
});
