import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { makeRng, randomF32, randomWeight, relativeError, testSeed } from '../test/test-support.ts';
import { getNumThreads, matmul, setNumThreads } from './index.ts';

const rng = makeRng(testSeed());
const addonPath = fileURLToPath(new URL('../build/Release/seesaw_kernels.node', import.meta.url));

describe('per-thread pool', () => {
  it('defaults to 1 and keeps the setting', () => {
    expect(getNumThreads()).toBe(1);
    setNumThreads(2);
    expect(getNumThreads()).toBe(2);
    setNumThreads(1);
  });

  it('gives identical results for 1, 2 and 3 threads over many consecutive calls', () => {
    const w = randomWeight(rng, 'bf16', 301, 257);
    const x = randomF32(rng, 5 * 257);
    const expected = new Float32Array(5 * 301);
    matmul(expected, x, 5, w);
    for (const threads of [2, 3, 2]) {
      setNumThreads(threads);
      for (let i = 0; i < 300; i++) {
        const out = new Float32Array(5 * 301);
        matmul(out, x, 5, w);
        // the same tiles run in the same order whatever thread runs them
        expect(relativeError(out, expected)).toBe(0);
      }
    }
    setNumThreads(1);
  });

  it('a worker_thread has its own pool, independent of the main thread', async () => {
    setNumThreads(2);
    const code = `
      const { parentPort } = require('node:worker_threads');
      const addon = require(${JSON.stringify(addonPath)});
      const before = addon.getNumThreads();
      addon.setNumThreads(3);
      const out = new Float32Array(2 * 5);
      const x = new Float32Array(2 * 16).fill(1);
      const w = new Float32Array(5 * 16).fill(0.5);
      for (let i = 0; i < 100; i++) addon.matmul(out, x, 2, 0, 5, 16, w, undefined);
      parentPort.postMessage({ before, after: addon.getNumThreads(), out: Array.from(out) });
    `;
    const worker = new Worker(code, { eval: true });
    const result = await new Promise<{ before: number; after: number; out: number[] }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(result.before).toBe(1);
    expect(result.after).toBe(3);
    expect(result.out).toEqual(new Array(10).fill(8));
    expect(getNumThreads()).toBe(2);
    setNumThreads(1);
  });
});
