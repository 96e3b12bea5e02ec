/**
 * A generated tiny model quantized to GGUF (Q8_0, Q4_0, Q4_K) runs end to end (Q8_0 / Q4_0 matrices
 * on the int8 kernels, Q4_K dequantized to f32): the device's logits
 * stay within a stated tolerance of the float64 reference forward pass on the dequantized weights,
 * and the greedy tokens are the same on one device, under D1 / T2 / P2 device workers and through
 * a Seesaw (prefill T2, decode P2) pair with re-shards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeesawEngine } from '@seesaw/coordinator';
import { CpuDevice } from '@seesaw/gpu-actor';
import { hostKvLayoutFor, slotBytes } from '@seesaw/kv-store';
import {
  Checkpoint,
  convertToGguf,
  type GgufTargetType,
  generateCheckpoint,
  loadModelConfig,
  loadReferenceWeights,
  ReferenceModel,
} from '@seesaw/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BLOCK_SIZE,
  makeRequests,
  runOnCluster,
  runReference,
  startCluster,
} from './cluster-test-support.ts';

/**
 * Max |device - reference| / max |reference| over a step's logits, against the float64 forward
 * pass on the dequantized weights.
 * - Q4_K: the device multiplies the dequantized weights in f32 over 4 layers: errors near 1e-5
 *   of the logits' scale; 1e-3 leaves room for summation order without hiding a wrong row.
 * - Q8_0 / Q4_0: the int8 kernels also round every activation to 8 bits per 32-block (a
 *   relative step of 1/254 of the block's largest value) in each of the 4 layers' 7 matmuls;
 *   measured below 1e-2 on this model, 3e-2 catches a wrong scale, block or row order.
 */
const LOGITS_RELATIVE_TOLERANCE = { Q8_0: 3e-2, Q4_0: 3e-2, Q4_K: 1e-3 } as const;
const DEVICE_MEMORY_BYTES = 48 << 20;

let workDir = '';
const files = new Map<GgufTargetType, string>();

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'seesaw-gguf-'));
  const hfDir = join(workDir, 'hf');
  await generateCheckpoint({ shape: 'tiny', seed: 23, dtype: 'bf16', outDir: hfDir });
  for (const type of ['Q8_0', 'Q4_0', 'Q4_K'] as const) {
    const path = join(workDir, `tiny-${type}.gguf`);
    convertToGguf({ modelDir: hfDir, outPath: path, type });
    files.set(type, path);
  }
}, 60_000);
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function relativeError(actual: Float32Array, expected: Float64Array): number {
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i] - expected[i]));
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  return maxDiff / maxRef;
}

describe('quantized GGUF logits against the float64 reference on the dequantized weights', () => {
  it.each(['Q8_0', 'Q4_0', 'Q4_K'] as const)('%s: a batched prefill and two decode steps', async (type) => {
    const path = files.get(type)!;
    const checkpoint = Checkpoint.open(path);
    const weights = loadReferenceWeights(checkpoint);
    const config = checkpoint.config;
    checkpoint.close();
    const device = await CpuDevice.load(path, {
      numThreads: 1,
      blockSize: BLOCK_SIZE,
      kvCacheBytes: 8 << 20,
    });
    try {
      const prompts = [
        [1, 40, 300, 7, 1999],
        [1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
      ];
      const references = prompts.map(() => new ReferenceModel(config, weights));
      const tokens = prompts.map((p) => [...p]);
      const cached = [0, 0];
      const greedy = { temperature: 0, topP: 1, topK: 0, seed: 0 };
      let worst = 0;
      for (let step = 0; step < 3; step++) {
        const result = await device.execute({
          stepId: step,
          addedSeqs: step === 0 ? prompts.map((_, seqId) => ({ seqId, sampling: greedy })) : [],
          releasedSeqIds: [],
          seqs: tokens.map((t, seqId) => ({
            seqId,
            tokenIds: t.slice(cached[seqId]),
            startPos: cached[seqId],
            // Enough blocks for the longest prompt plus the decode steps, apart per sequence.
            blockTable: [0, 1].map((b) => seqId * 2 + b),
            isSampled: true,
            outputIndex: 0,
          })),
          isLogitsReturned: true,
        });
        tokens.forEach((t, seqId) => {
          const expected = references[seqId].forward(t.slice(cached[seqId]));
          const last = expected[expected.length - 1];
          const error = relativeError(result.logits![seqId], last);
          worst = Math.max(worst, error);
          expect(error, `${type} step ${step} seq ${seqId}`).toBeLessThan(LOGITS_RELATIVE_TOLERANCE[type]);
          cached[seqId] = t.length;
          t.push(result.sampled[seqId].tokenId);
        });
      }
      console.log(`${type}: worst relative logit error ${worst.toExponential(2)}`);
    } finally {
      device.close();
    }
  });
});

describe('quantized GGUF tokens across layouts', () => {
  const layouts = (['Q8_0', 'Q4_0'] as const).flatMap((type) =>
    ['D1', 'T2', 'P2'].map((parallel) => [type, parallel] as const),
  );
  it.each(layouts)('%s under %s gives the single-device tokens', async (type, parallel) => {
    const path = files.get(type)!;
    const config = loadModelConfig(path);
    const requests = makeRequests(config.vocabSize, 5);
    const reference = await runReference(path, requests);
    const cluster = await startCluster(path, parallel, { deviceMemoryBytes: DEVICE_MEMORY_BYTES });
    try {
      const { outputs } = await runOnCluster(cluster, requests);
      for (const [requestId, tokens] of reference) expect(outputs.get(requestId), requestId).toEqual(tokens);
    } finally {
      await cluster.close({ mode: 'drain' });
    }
  });

  it.each(['Q8_0', 'Q4_0', 'Q4_K'] as const)(
    '%s through a Seesaw pair (prefill T2, decode P2) gives the single-device tokens',
    async (type) => {
      const path = files.get(type)!;
      const config = loadModelConfig(path);
      const requests = makeRequests(config.vocabSize, 9);
      const reference = await runReference(path, requests);
      const cluster = await startCluster(path, 'T2', {
        decodeParallel: 'P2',
        deviceMemoryBytes: DEVICE_MEMORY_BYTES,
        hostKvBytes: 30 * slotBytes(hostKvLayoutFor(config, BLOCK_SIZE)),
      });
      try {
        const replica = cluster.phasedReplicas[0]!;
        // The devices said at load how many blocks their decode caches will have.
        const promisedDecodeBlocks = replica.numDecodeKvBlocks;
        expect(promisedDecodeBlocks).toBeGreaterThan(0);
        const engine = new SeesawEngine(replica, {
          maxModelLen: config.maxPositionEmbeddings,
          eosTokenIds: config.eosTokenIds,
          maxNumBatchedTokens: 64,
          maxNumSeqs: 8,
          hostKv: cluster.engineHostKv!,
        });
        for (const request of requests) engine.addRequest(request);
        const outputs = new Map<string, number[]>();
        const stats = await engine.run((output) => outputs.set(output.requestId, output.outputTokenIds));
        for (const [requestId, tokens] of reference)
          expect(outputs.get(requestId), requestId).toEqual(tokens);
        expect(stats.numSwitches).toBeGreaterThanOrEqual(1);
        // A run ends in decode; its caches hold what was promised (quantized weights included).
        expect(replica.phase).toBe('decode');
        expect(replica.numKvBlocks).toBe(promisedDecodeBlocks);
      } finally {
        await cluster.close({ mode: 'drain' });
      }
    },
  );
});
