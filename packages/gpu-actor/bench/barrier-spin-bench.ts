/**
 * The SharedMemoryGroup barrier's spin-then-park: two ranks in worker threads alternate a
 * stretch of compute (a T2 decode layer half on the small shape, ~0.5 ms, varied per round) with
 * an all-reduce of a 32-token hidden state, for several spinMicros, interleaved in rounds of
 * runs so that load changes on a shared machine hit every setting alike. Prints each setting's
 * time per round and its ratio to parking at once (spinMicros 0); lower is better.
 * Run: pnpm bench:barrier-spin
 */
import { startWorker } from '@seesaw/protocol';
import { createSharedMemoryGroup } from '../src/shared-memory-group.ts';
import type { BarrierSpinWorkerInput } from './barrier-spin-worker.ts';

const WORKER_ENTRY = new URL('./barrier-spin-worker.ts', import.meta.url);
const SPIN_SETTINGS = [0, 20, 50, 200];
const NUM_REPEATS = 3;
const NUM_ROUNDS = 2000;

async function microsPerRound(spinMicros: number, seed: number): Promise<number> {
  const reduceFloats = 32 * 768;
  const descriptors = createSharedMemoryGroup(2, reduceFloats).map((d) => ({ ...d, spinMicros }));
  const outputs = await Promise.all(
    descriptors.map((descriptor, rank) => {
      const payload: BarrierSpinWorkerInput = {
        descriptor,
        numRounds: NUM_ROUNDS,
        workMicros: 500,
        jitterMicros: 100,
        reduceFloats,
        seed: seed * 2 + rank + 1,
      };
      const worker = startWorker(WORKER_ENTRY, { workerData: { payload } });
      return new Promise<number>((resolve, reject) => {
        worker.once('message', (output: { microsPerRound: number }) => {
          resolve(output.microsPerRound);
          void worker.terminate();
        });
        worker.once('error', reject);
      });
    }),
  );
  return Math.max(...outputs);
}

const totals = new Map<number, number>(SPIN_SETTINGS.map((s) => [s, 0]));
for (let repeat = 0; repeat < NUM_REPEATS; repeat++) {
  for (const spin of SPIN_SETTINGS)
    totals.set(spin, totals.get(spin)! + (await microsPerRound(spin, repeat)));
}
const parked = totals.get(0)! / NUM_REPEATS;
console.log(
  `spinMicros   us/round   vs park at once   (${NUM_REPEATS} x ${NUM_ROUNDS} rounds, ~500 us work each)`,
);
for (const spin of SPIN_SETTINGS) {
  const micros = totals.get(spin)! / NUM_REPEATS;
  console.log(
    `${String(spin).padStart(10)}   ${micros.toFixed(1).padStart(8)}   ${(micros / parked).toFixed(3)}x`,
  );
}
