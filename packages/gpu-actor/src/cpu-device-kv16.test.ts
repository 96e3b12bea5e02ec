// The whole forward pass with a 16-bit KV cache against the float64 reference: K and V are
// rounded to bf16 / f16 (nearest even) as they are written, attention widens them exactly and
// accumulates in f32. The logits' error is stated per dtype below; the f32 cache's error is
// measured beside it, so the test also fails if the 16-bit path silently stayed f32.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KvDType } from '@seesaw/kernels';
import { Checkpoint, generateCheckpoint, loadReferenceWeights, ReferenceModel } from '@seesaw/model';
import type { StepSeq } from '@seesaw/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuDevice } from './cpu-device.ts';

/**
 * Max |logit error| / max |reference logit| over prefills, decodes and a chunked prompt of the
 * tiny model (4 layers). bf16 keeps 8 mantissa bits (relative rounding up to 2^-9 = 2e-3 per
 * K/V element), f16 11 bits (2^-12 = 2.4e-4). Measured over 4 seeds: bf16 1.0-1.2e-3, f16
 * 1.3-1.6e-4, an f32 cache 2.1-2.3e-7. The bounds leave about 4x room.
 */
const TOLERANCE: Record<KvDType, number> = { f32: 1e-5, bf16: 5e-3, f16: 6e-4 };
const BLOCK_SIZE = 8;

const seed = Number(process.env.SEESAW_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`cpu-device-kv16 seed ${seed} (replay with SEESAW_TEST_SEED=${seed})`);

function relativeError(actual: Float32Array, expected: Float64Array): number {
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  return maxDiff / maxRef;
}

let workDir = '';
let modelDir = '';
beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'seesaw-kv16-'));
  modelDir = join(workDir, 'tiny-f32');
  // f32 weights: the KV cache's rounding is the only error the device adds to f32 arithmetic.
  await generateCheckpoint({ shape: 'tiny', seed: seed % 1000, dtype: 'f32', outDir: modelDir });
}, 60_000);
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

/** The worst relative logits error of `kvDtype` over prefills, decodes and a chunked prompt, and every step's logits. */
async function measure(kvDtype: KvDType): Promise<{ worst: number; logits: Float32Array[] }> {
  const device = await CpuDevice.load(modelDir, {
    numThreads: 2,
    kvCacheBytes: 8 * 1024 * 1024,
    blockSize: BLOCK_SIZE,
    kvDtype,
  });
  const checkpoint = Checkpoint.open(modelDir);
  const weights = loadReferenceWeights(checkpoint);
  checkpoint.close();
  const { config } = device;
  let state = seed >>> 0;
  const randomToken = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state % config.vocabSize;
  };
  let nextBlock = device.numKvBlocks - 1;
  const seqs = [1, 13, 29, 21].map((length, seqId) => ({
    seqId,
    reference: new ReferenceModel(config, weights),
    tokens: Array.from({ length }, randomToken),
    numCached: 0,
    blockTable: [] as number[],
  }));
  let worst = 0;
  const logits: Float32Array[] = [];
  let stepId = 0;
  const runStep = async (work: Array<{ seq: (typeof seqs)[number]; numTokens: number }>, added: number[]) => {
    const stepSeqs: StepSeq[] = work.map(({ seq, numTokens }) => {
      while (seq.blockTable.length * BLOCK_SIZE < seq.numCached + numTokens) seq.blockTable.push(nextBlock--);
      return {
        seqId: seq.seqId,
        tokenIds: seq.tokens.slice(seq.numCached, seq.numCached + numTokens),
        startPos: seq.numCached,
        blockTable: [...seq.blockTable],
        isSampled: true,
        outputIndex: 0,
      };
    });
    const result = await device.execute({
      stepId: stepId++,
      addedSeqs: added.map((seqId) => ({ seqId, sampling: { temperature: 0, topP: 1, topK: 0, seed: 0 } })),
      releasedSeqIds: [],
      seqs: stepSeqs,
      isLogitsReturned: true,
    });
    work.forEach(({ seq, numTokens }, i) => {
      const expected = seq.reference.forward(seq.tokens.slice(seq.numCached, seq.numCached + numTokens));
      seq.numCached += numTokens;
      worst = Math.max(worst, relativeError(result.logits![i]!, expected[expected.length - 1]!));
      logits.push(result.logits![i]!);
      // The next input is a fresh random token (teacher forcing): no dependence on near-ties.
      if (seq.numCached === seq.tokens.length) seq.tokens.push(randomToken());
    });
  };
  const [a, b, c, chunked] = seqs as [(typeof seqs)[number], ...(typeof seqs)[number][]];
  const decoding = [a, b!, c!];
  await runStep(
    decoding.map((seq) => ({ seq, numTokens: seq.tokens.length })),
    [0, 1, 2],
  );
  for (let i = 0; i < 6; i++)
    await runStep(
      decoding.map((seq) => ({ seq, numTokens: 1 })),
      [],
    );
  for (const [i, size] of [8, 8, 5].entries()) {
    if (i > 0) chunked!.tokens.pop(); // the chunk's sampled token is not part of the prompt
    await runStep(
      [{ seq: chunked!, numTokens: size }, ...decoding.map((seq) => ({ seq, numTokens: 1 }))],
      i === 0 ? [3] : [],
    );
  }
  device.close();
  return { worst, logits };
}

describe('CpuDevice with a 16-bit KV cache against the float64 reference', () => {
  it('stays within the stated tolerance per dtype, and differs from the f32 cache', async () => {
    const f32 = await measure('f32');
    expect(f32.worst).toBeLessThan(TOLERANCE.f32);
    for (const kvDtype of ['bf16', 'f16'] as const) {
      const { worst, logits } = await measure(kvDtype);
      console.log(
        `kv ${kvDtype}: max relative logits error ${worst.toExponential(2)} (f32 cache ${f32.worst.toExponential(2)})`,
      );
      expect(worst).toBeLessThan(TOLERANCE[kvDtype]);
      expect(worst).toBeGreaterThan(f32.worst);
      expect(logits.some((row, i) => row.some((value, j) => value !== f32.logits[i]![j]))).toBe(true);
    }
  }, 60_000);

  it('holds twice the blocks of an f32 cache in the same bytes', async () => {
    const blocks = await Promise.all(
      (['f32', 'bf16', 'f16'] as const).map(async (kvDtype) => {
        const device = await CpuDevice.load(modelDir, {
          kvCacheBytes: 1 << 20,
          blockSize: BLOCK_SIZE,
          kvDtype,
        });
        device.close();
        return device.numKvBlocks;
      }),
    );
    expect(blocks[1]).toBe(2 * blocks[0]!);
    expect(blocks[2]).toBe(2 * blocks[0]!);
  });
});
