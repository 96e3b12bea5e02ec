import { startWorker } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { bitsEqual, concatFloats, randomFloats, referenceSum } from '../test/collective-test-support.ts';
import type {
  CollectiveOp,
  CollectiveWorkerInput,
  CollectiveWorkerOutput,
} from '../test/collective-test-worker.ts';
import { createSharedMemoryGroup, DEFAULT_SPIN_MICROS, SharedMemoryGroup } from './shared-memory-group.ts';

const WORKER_ENTRY = new URL('../test/collective-test-worker.ts', import.meta.url);

/** Runs one real worker thread per rank and collects each rank's results. */
function runRanks(inputs: CollectiveWorkerInput[]): Promise<CollectiveWorkerOutput[]> {
  return Promise.all(
    inputs.map(
      (payload) =>
        new Promise<CollectiveWorkerOutput>((resolve, reject) => {
          const worker = startWorker(WORKER_ENTRY, { workerData: { payload } });
          let output: CollectiveWorkerOutput | undefined;
          worker.once('message', (message: CollectiveWorkerOutput) => {
            output = message;
          });
          worker.once('error', reject);
          worker.once('exit', (code) => {
            if (code === 0 && output) resolve(output);
            else reject(new Error(`rank ${payload.descriptor.rank} exited with code ${code} and no result`));
          });
        }),
    ),
  );
}

describe('SharedMemoryGroup across worker threads', () => {
  it('reduces and gathers in chunks, bit-identical on every rank, back to back, and survives a mismatch', async () => {
    const size = 3;
    // 7-float slots: every buffer over 7 floats goes through in several chunks.
    const descriptors = createSharedMemoryGroup(size, 7);
    const reduceLengths = [5, 7, 0, 100, 1001];
    const reduceInputs = reduceLengths.map((n, op) =>
      Array.from({ length: size }, (_, r) => randomFloats(n, 1000 * op + r + 1)),
    );
    const gatherParts = Array.from({ length: size }, (_, r) => randomFloats(3 + 11 * r, 500 + r));
    const gatherLength = gatherParts.reduce((n, part) => n + part.length, 0);
    const inputs = descriptors.map((descriptor, r): CollectiveWorkerInput => {
      const ops: CollectiveOp[] = [];
      for (const perRank of reduceInputs) {
        ops.push({ kind: 'allReduceSum', input: perRank[r] });
        ops.push({ kind: 'allGather', input: gatherParts[r], outLength: gatherLength });
      }
      // Rank 2 reduces a different length: every rank must fail alike, then carry on.
      ops.push({ kind: 'allReduceSum', input: new Float32Array(r === 2 ? 9 : 8) });
      // Rank 1 gathers while the others reduce.
      ops.push(
        r === 1
          ? { kind: 'allGather', input: new Float32Array(2), outLength: 6 }
          : { kind: 'allReduceSum', input: new Float32Array(2) },
      );
      ops.push({ kind: 'allReduceSum', input: reduceInputs[3][r] });
      return { descriptor, ops };
    });
    const outputs = await runRanks(inputs);

    const expectedGather = concatFloats(gatherParts);
    for (const { results } of outputs) {
      reduceInputs.forEach((perRank, op) => {
        expect(bitsEqual(results[2 * op] as Float32Array, referenceSum(perRank))).toBe(true);
        expect(bitsEqual(results[2 * op + 1] as Float32Array, expectedGather)).toBe(true);
      });
      const n = 2 * reduceInputs.length;
      expect(results[n]).toMatch(/^allReduceSum: ranks reduce different lengths \[8, 8, 9\]$/);
      expect(results[n + 1]).toBe(
        'collective: ranks called different collectives (allReduceSum, allGather, allReduceSum)',
      );
      expect(bitsEqual(results[n + 2] as Float32Array, referenceSum(reduceInputs[3]))).toBe(true);
    }
  });

  // Parking at once, the default short spin, and a spin long enough that no rank parks.
  for (const spinMicros of [0, DEFAULT_SPIN_MICROS, 2_000_000]) {
    it(`passes one barrier a round (spinMicros ${spinMicros}): slots alternate, so no barrier guards a slot against the next round`, async () => {
      // 4-float slots: a 10-float all-reduce is 3 rounds, a gather of 3 + 6 floats 2, an empty all-reduce 1.
      const descriptors = createSharedMemoryGroup(2, 4).map((d) => ({ ...d, spinMicros }));
      const reduceInputs = [0, 1].map((r) => randomFloats(10, 70 + r));
      const gatherParts = [randomFloats(3, 80), randomFloats(6, 81)];
      const outputs = await runRanks(
        descriptors.map((descriptor, r) => ({
          descriptor,
          ops: [
            { kind: 'allReduceSum', input: reduceInputs[r] },
            { kind: 'allGather', input: gatherParts[r], outLength: 9 },
            { kind: 'allReduceSum', input: new Float32Array(0) },
          ],
        })),
      );
      for (const { results } of outputs) {
        expect(bitsEqual(results[0] as Float32Array, referenceSum(reduceInputs))).toBe(true);
        expect(bitsEqual(results[1] as Float32Array, concatFloats(gatherParts))).toBe(true);
      }
      // The barrier's generation word (control word 1) counts the barriers every rank passed.
      expect(new Int32Array(descriptors[0].sab, 0, 2)[1]).toBe(3 + 2 + 1);
    });
  }

  it('measures an 8192-float all-reduce between two threads', async () => {
    const descriptors = createSharedMemoryGroup(2, 64 * 1024);
    const outputs = await runRanks(
      descriptors.map((descriptor) => ({ descriptor, ops: [], timed: { length: 8192, numOps: 300 } })),
    );
    const micros = outputs.map((o) => o.microsPerTimedOp ?? Number.NaN);
    console.log(
      `SharedMemoryGroup 2 ranks, 8192 floats: ${micros.map((m) => m.toFixed(1)).join(' / ')} us per all-reduce`,
    );
    expect(micros.every((m) => m > 0 && m < 10_000)).toBe(true);
  });

  it('checks its descriptor and times out instead of hanging when a peer never arrives', async () => {
    const [first] = createSharedMemoryGroup(2, 4);
    expect(() => new SharedMemoryGroup({ ...first, rank: 2 })).toThrow(/rank 2 outside/);
    expect(() => new SharedMemoryGroup({ ...first, capacityFloats: 1 << 20 })).toThrow(/too small/);
    expect(() => new SharedMemoryGroup({ ...first, spinMicros: -1 })).toThrow(
      /spinMicros must be a number >= 0, got -1/,
    );
    const lonely = new SharedMemoryGroup(first, 50);
    await expect(lonely.allReduceSum(new Float32Array(2))).rejects.toThrow(
      /peers did not reach the barrier within 50 ms/,
    );
  });
});
