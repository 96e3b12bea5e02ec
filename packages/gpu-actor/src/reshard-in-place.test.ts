import { Checkpoint, type ParallelConfig, planReshard, type TensorSlice } from '@seesaw/model';
import { describe, expect, it } from 'vitest';
import {
  type ArenaDeviceState,
  BF16_FIXTURE,
  expectSameWeights,
  P2_T2_LAYOUTS as LAYOUTS,
  loadDirect,
  loadIntoArena,
  openMeshes,
  planTensorInfo,
  TEST_RESHARD_RATES as RATES,
} from '../test/reshard-mesh-test-support.ts';
import { executeReshard, type ReshardIo } from './reshard-executor.ts';
import { weightArenaBytesFor } from './weight-arena.ts';

// Peer pieces read in place: two devices re-shard P2 -> T2 -> P2 by p2p in this thread, their
// weights in weight arenas (shared memory), over real MessageChannel links. Device 1 takes every
// piece late, so device 0 is ahead and would free (and refill) the ranges its pieces lie in if it
// did not wait for device 1's receipts. Every piece must arrive as a view of the sender's shared
// memory, no device may finish before the last receipt it waits for is sent, and every switch
// must give a fresh load's bytes.

const LATE_MS = 3;

describe('re-shard pieces read in place from the sender’s shared weight memory', () => {
  it('P2 -> T2 -> P2 by p2p with a slow receiver: the sender waits for receipts, bytes stay right', async () => {
    const checkpoint = Checkpoint.open(BF16_FIXTURE);
    const meshes = await openMeshes(2);
    try {
      const config = checkpoint.config;
      const tensorInfo = planTensorInfo(checkpoint);
      // Reserved for both directions' peaks at load, as a Seesaw device worker does.
      const states: ArenaDeviceState[] = meshes.map((_, device) => loadIntoArena(checkpoint, device, true));
      for (const [reshardId, from, to] of [
        [1, LAYOUTS[0]!, LAYOUTS[1]!],
        [2, LAYOUTS[1]!, LAYOUTS[0]!],
      ] as Array<[number, ParallelConfig, ParallelConfig]>) {
        const plan = planReshard(config, tensorInfo, from, to, { route: 'p2p', rates: RATES });
        const inPlace: boolean[] = [];
        const confirmedAt: number[][] = [[], []];
        const doneAt: number[] = [];
        const outcomes = await Promise.all(
          meshes.map(async (mesh, device) => {
            const { arena } = states[device]!;
            arena.reserve(weightArenaBytesFor(plan.devices[device]!.peakWeightBytes));
            const io: ReshardIo = { ...mesh.reshardIo(reshardId, checkpoint), weightArena: arena };
            const { receive, confirm } = io;
            io.receive = async (peer: number, slice: TensorSlice) => {
              const bytes = await receive(peer, slice);
              inPlace.push(bytes.buffer instanceof SharedArrayBuffer);
              if (device === 1) await new Promise((resolve) => setTimeout(resolve, LATE_MS));
              return bytes;
            };
            io.confirm = (peer: number, slice: TensorSlice) => {
              confirmedAt[peer]!.push(performance.now());
              confirm!(peer, slice);
            };
            const outcome = await executeReshard(config, plan.devices[device]!, states[device]!, io);
            doneAt[device] = performance.now();
            return outcome;
          }),
        );
        expect(inPlace.length).toBeGreaterThan(0);
        expect(inPlace.every(Boolean)).toBe(true);
        // Device 0's pieces were taken by device 1 (confirmedAt[0]): device 0 ended after the last.
        expect(confirmedAt[0]!.length).toBeGreaterThan(0);
        expect(doneAt[0]!).toBeGreaterThanOrEqual(Math.max(...confirmedAt[0]!));
        outcomes.forEach((outcome, device) => {
          const expected = loadDirect(checkpoint, to, device);
          expectSameWeights(outcome.weights, expected.weights);
          expect(outcome.held.digest()).toBe(expected.held.digest());
          expect(outcome.bytesReceived).toBe(plan.devices[device]!.bytesReceived);
          states[device] = { weights: outcome.weights, held: outcome.held, arena: states[device]!.arena };
        });
      }
    } finally {
      for (const mesh of meshes) mesh.close('test done');
      checkpoint.close();
    }
  });
});
