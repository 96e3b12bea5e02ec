import type { ModelConfig } from '@seesaw/model';
import type { StepKvSwap, Tensor } from '@seesaw/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { GpuKvCache } from './gpu-kv-cache.ts';
import { GpuKvWriteBacks, WriteBackStagingLayout, writeBackLayerGroups } from './gpu-kv-write-backs.ts';
import { WebGpuKernels } from './webgpu-kernels.ts';
import { gpuForTests, makeRng, randomF32, testSeed } from './webgpu-test-support.ts';

describe('write-back layer groups and staging layout', () => {
  it('splits the layers into at most maxSubmits contiguous groups of sizes within one', () => {
    for (const [numLayers, maxSubmits] of [
      [4, 4],
      [2, 4],
      [12, 4],
      [5, 4],
      [22, 3],
      [7, 1],
    ]) {
      const groups = writeBackLayerGroups(numLayers, maxSubmits);
      expect(groups.length).toBe(Math.min(numLayers, maxSubmits));
      expect(groups[0].start).toBe(0);
      expect(groups.at(-1)!.end).toBe(numLayers);
      groups.slice(1).forEach((g, i) => {
        expect(g.start).toBe(groups[i].end);
      });
      const sizes = groups.map((g) => g.end - g.start);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    }
    expect(() => writeBackLayerGroups(4, 0)).toThrow(/positive integer, got 0/);
  });

  it('gives every (layer, K/V, sequence, block) its own block of the staging buffer', () => {
    const swaps = [swapOf(1, [5, 2, 9], 40), swapOf(2, [0], 3), swapOf(3, [7, 8], 17)];
    const layout = new WriteBackStagingLayout(swaps, 6);
    const offsets: number[] = [];
    for (let layer = 0; layer < 3; layer++)
      for (const kv of [0, 1] as const)
        swaps.forEach((swap, seq) => {
          swap.blockIds.forEach((_, block) => {
            offsets.push(layout.offset(layer, kv, seq, block));
          });
        });
    expect(new Set(offsets).size).toBe(offsets.length);
    expect(offsets.every((o) => o % 6 === 0 && o + 6 <= layout.floats(3))).toBe(true);
    expect(offsets.length * 6).toBe(layout.floats(3));
  });
});

const gpu = await gpuForTests();
afterAll(() => gpu?.device.destroy());

const LAYERS = 4;
const KV_HEADS = 2;
const HEAD_DIM = 8;
const BLOCK_SIZE = 4;
const NUM_BLOCKS = 12;

function swapOf(seqId: number, blockIds: number[], numTokens: number): StepKvSwap {
  return { seqId, blockIds, slotIds: blockIds.map((b) => 100 + b), numTokens };
}

/** A GPU cache filled with seeded random K/V, and its host copy [layer][K, V]. */
function randomCache(kernels: WebGpuKernels, seed: number) {
  const config = { numLayers: LAYERS, numKvHeads: KV_HEADS, headDim: HEAD_DIM } as ModelConfig;
  const cache = new GpuKvCache(kernels, config, NUM_BLOCKS, BLOCK_SIZE);
  const rng = makeRng(seed);
  const floats = NUM_BLOCKS * KV_HEADS * BLOCK_SIZE * HEAD_DIM;
  const host = Array.from({ length: LAYERS }, (_, l) => {
    const layer = [randomF32(rng, floats), randomF32(rng, floats)];
    kernels.write(cache.keys[l], layer[0]);
    kernels.write(cache.values[l], layer[1]);
    return layer;
  });
  return { cache, host };
}

/** [1, 2, heads, numTokens, headDim] of one layer of a sequence, read index by index from the host copy. */
function expectedLayer(host: Float32Array[][], layer: number, swap: StepKvSwap): Float32Array {
  const out: number[] = [];
  for (const kv of [0, 1])
    for (let h = 0; h < KV_HEADS; h++)
      for (let t = 0; t < swap.numTokens; t++)
        for (let d = 0; d < HEAD_DIM; d++) {
          const block = swap.blockIds[Math.floor(t / BLOCK_SIZE)];
          const at = ((block * KV_HEADS + h) * BLOCK_SIZE + (t % BLOCK_SIZE)) * HEAD_DIM + d;
          out.push(host[layer][kv][at]);
        }
  return Float32Array.from(out);
}

interface Put {
  seqId: number;
  layer: number;
  tensor: Tensor;
}

/** A put that records what it got and acknowledges on the next tick (or fails where told). */
function recordingPut(failAt?: { seqId: number; layer: number }) {
  const puts: Put[] = [];
  const put = async (swap: StepKvSwap, layer: number, tensor: Tensor) => {
    puts.push({ seqId: swap.seqId, layer, tensor });
    await new Promise((resolve) => setImmediate(resolve));
    if (failAt?.seqId === swap.seqId && failAt.layer === layer)
      throw new Error(`store refused sequence ${swap.seqId} layer ${layer}`);
  };
  return { puts, put };
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 2));
  expect(condition()).toBe(true);
}

describe.skipIf(gpu === null)('GpuKvWriteBacks on a WebGPU device', () => {
  it('puts each layer group once its last layer is encoded, with the K/V the stream held there', async () => {
    const seed = testSeed(); // printed, with how to replay it
    const kernels = WebGpuKernels.forContext(gpu!);
    const { cache, host } = randomCache(kernels, seed);
    const swaps = [swapOf(1, [3, 0, 7], 10), swapOf(2, [5], 4), swapOf(3, [11, 1], 5)];
    const { puts, put } = recordingPut();
    const writeBacks = new GpuKvWriteBacks(kernels, cache, swaps, put, 2); // groups [0, 2), [2, 4)

    writeBacks.onLayerKvWritten(0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(puts).toEqual([]); // the group is not complete: nothing submitted, nothing put

    writeBacks.onLayerKvWritten(1);
    // Stream order: layer 0 is overwritten after its copies were encoded (a later step reusing
    // the blocks), and layer 2 before its copies (this step's own write of that layer).
    const zeros = kernels.upload(new Float32Array(cache.keys[0].length));
    const twos = kernels.upload(new Float32Array(cache.keys[0].length).fill(2));
    kernels.copy(cache.keys[0], 0, zeros, 0, zeros.length);
    kernels.copy(cache.values[2], 0, twos, 0, twos.length);
    kernels.flush();
    zeros.buffer.destroy();
    twos.buffer.destroy();
    host[2][1].fill(2);
    await until(() => puts.length === 2 * swaps.length);
    expect(puts.map((p) => p.layer).sort()).toEqual([0, 0, 0, 1, 1, 1]);

    const timings = await writeBacks.finish(); // encodes layers 2 and 3, which were not reported
    expect(puts.length).toBe(LAYERS * swaps.length);
    for (const { seqId, layer, tensor } of puts) {
      const swap = swaps.find((s) => s.seqId === seqId)!;
      expect(tensor.dtype).toBe('f32');
      expect(tensor.shape).toEqual([1, 2, KV_HEADS, swap.numTokens, HEAD_DIM]);
      expect(tensor.data).toEqual(expectedLayer(host, layer, swap));
    }
    expect(timings.writeBackMs).toBeGreaterThan(0);
    expect(timings.writeBackWaitMs).toBeGreaterThanOrEqual(0);
    cache.destroy();
  });

  it('finish() rejects with the first failed put, after the others settled', async () => {
    const kernels = WebGpuKernels.forContext(gpu!);
    const { cache } = randomCache(kernels, 5);
    const swaps = [swapOf(1, [0, 1], 6), swapOf(2, [2], 1)];
    const { puts, put } = recordingPut({ seqId: 2, layer: 1 });
    const writeBacks = new GpuKvWriteBacks(kernels, cache, swaps, put);
    for (let layer = 0; layer < LAYERS; layer++) writeBacks.onLayerKvWritten(layer);
    await expect(writeBacks.finish()).rejects.toThrow('store refused sequence 2 layer 1');
    expect(puts.length).toBe(LAYERS * swaps.length);
    cache.destroy();
  });

  it('rejects a write-back that names blocks outside the cache or too few for its tokens', () => {
    const kernels = WebGpuKernels.forContext(gpu!);
    const { cache } = randomCache(kernels, 6);
    const { put } = recordingPut();
    expect(() => new GpuKvWriteBacks(kernels, cache, [swapOf(4, [NUM_BLOCKS], 2)], put)).toThrow(
      `write-back of sequence 4: block ${NUM_BLOCKS} is outside the cache's ${NUM_BLOCKS} blocks`,
    );
    expect(() => new GpuKvWriteBacks(kernels, cache, [swapOf(5, [1], BLOCK_SIZE + 1)], put)).toThrow(
      /write-back of sequence 5: 5 tokens need 2 blocks/,
    );
    cache.destroy();
  });
});
