import { join } from 'node:path';
import {
  Checkpoint,
  type ParallelConfig,
  parseParallelConfig,
  planReshard,
  type TensorSlice,
} from '@seesaw/model';
import { describe, expect, it } from 'vitest';
import {
  expectSameWeights,
  loadDirect,
  openMeshes,
  planTensorInfo,
  positionOf,
} from '../test/reshard-mesh-test-support.ts';
import type { HeldWeights } from './held-weights.ts';
import type { ModelWeights } from './model-weights.ts';
import { executeReshard, type ReshardIo } from './reshard-executor.ts';
import { switchArenaBytes, WeightArena, weightArenaBytesFor } from './weight-arena.ts';

// Peer pieces read in place: two devices re-shard P2 -> T2 -> P2 by p2p in this thread, their
// weights in weight arenas (shared memory), over real MessageChannel links. Device 1 takes every
// piece late, so device 0 is ahead and would free (and refill) the ranges its pieces lie in if it
// did not wait for device 1's receipts. Every piece must arrive as a view of the sender's shared
// memory, no device may finish before the last receipt it waits for is sent, and every switch
// must give a fresh load's bytes.

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');
const RATES = { p2pBytesPerSecond: 4e9, hostBytesPerSecond: 2e9 };
const LAYOUTS = ['D1T1P2', 'D1T2P1'].map(parseParallelConfig);
const LATE_MS = 3;

interface DeviceState {
  weights: ModelWeights;
  held: HeldWeights;
  arena: WeightArena;
}

describe('re-shard pieces read in place from the sender’s shared weight memory', () => {
  it('P2 -> T2 -> P2 by p2p with a slow receiver: the sender waits for receipts, bytes stay right', async () => {
    const checkpoint = Checkpoint.open(FIXTURE);
    const meshes = await openMeshes(2);
    try {
      const config = checkpoint.config;
      const tensorInfo = planTensorInfo(checkpoint);
      const states: DeviceState[] = meshes.map((_, device) => {
        // Reserved for both directions' peaks at load, as a Seesaw device worker does.
        const arena = new WeightArena();
        const [here, other] = LAYOUTS.map((layout) => positionOf(layout, device));
        arena.reserve(switchArenaBytes(checkpoint, here!, other!));
        return { ...loadDirect(checkpoint, LAYOUTS[0]!, device, arena), arena };
      });
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
