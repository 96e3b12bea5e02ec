import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildForwardBatch, CpuDevice, loadModelWeights } from '@seesaw/gpu-actor';
import { Checkpoint, generateCheckpoint, loadReferenceWeights, ReferenceModel } from '@seesaw/model';
import type { StepSeq } from '@seesaw/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { GpuKvCache } from './gpu-kv-cache.ts';
import { TILED_MATMUL_MIN_ROWS, WebGpuKernels } from './webgpu-kernels.ts';
import { WebGpuLlamaForward } from './webgpu-llama-forward.ts';
import { gpuForTests, relativeError } from './webgpu-test-support.ts';

// The f32 small-shaped model (12 layers, hidden 768, vocab 32000) the issue asks for, with a
// short prompt and two decode steps: lavapipe runs on the CPU, so this file stays small.
const gpu = await gpuForTests();
const BLOCK_SIZE = 16;
const NUM_BLOCKS = 4;

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

const workDir = mkdtempSync(join(tmpdir(), 'seesaw-webgpu-small-'));
afterAll(() => {
  rmSync(workDir, { recursive: true, force: true });
  gpu?.device.destroy();
});

describe.skipIf(gpu === null)('WebGPU forward pass on an f32 small-shaped model', () => {
  it('logits match the float64 reference and greedy tokens the CPU engine', async () => {
    await generateCheckpoint({ shape: 'small', seed: 3, dtype: 'f32', outDir: workDir });
    const checkpoint = Checkpoint.open(workDir);
    const config = checkpoint.config;
    const reference = new ReferenceModel(config, loadReferenceWeights(checkpoint));
    // Hardware rules but the decode GEMV off: on lavapipe it is several times slower than the
    // one-thread-per-output kernel and would nearly double this test's time; it gives that
    // kernel's bits (webgpu-gemv.test.ts) and runs in the tiny forward tests.
    const kernels = new WebGpuKernels(gpu!.device, TILED_MATMUL_MIN_ROWS, 0);
    const forward = new WebGpuLlamaForward(kernels, config, loadModelWeights(checkpoint));
    checkpoint.close();
    const cache = new GpuKvCache(kernels, config, NUM_BLOCKS, BLOCK_SIZE);
    const cpu = await CpuDevice.load(workDir, {
      numThreads: 2,
      kvCacheBytes: 64 * 1024 * 1024,
      blockSize: BLOCK_SIZE,
    });

    const tokens = [1, 523, 9041, 77, 31999, 12];
    const blockTable = [2, 0];
    let numCached = 0;
    for (let step = 0; step < 3; step++) {
      const seq: StepSeq = {
        seqId: 1,
        tokenIds: tokens.slice(numCached),
        startPos: numCached,
        blockTable,
        isSampled: true,
        outputIndex: step,
      };
      const logits = await forward.run(buildForwardBatch([seq], BLOCK_SIZE, NUM_BLOCKS), cache);
      const onCpu = await cpu.execute({
        stepId: step,
        addedSeqs: step === 0 ? [{ seqId: 1, sampling: { temperature: 0, topP: 1, topK: 0, seed: 0 } }] : [],
        releasedSeqIds: [],
        seqs: [seq],
      });
      const expected = reference.forward(tokens.slice(numCached));
      numCached = tokens.length;
      expect(relativeError(logits, expected[expected.length - 1])).toBeLessThan(1e-3);
      expect(argmax(logits)).toBe(onCpu.sampled[0].tokenId);
      tokens.push(argmax(logits));
    }
    cpu.close();
  });
});
