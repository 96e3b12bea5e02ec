import type { Weight } from '@seesaw/kernels';
import { Checkpoint, type ParallelConfig, planReshard, type ReshardRoute } from '@seesaw/model';
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
  positionOf,
  TEST_RESHARD_RATES as RATES,
} from '../test/reshard-mesh-test-support.ts';
import { HostWeightCache } from './host-weight-cache.ts';
import type { ModelWeights } from './model-weights.ts';
import { executeReshard } from './reshard-executor.ts';
import { weightArenaBytesFor } from './weight-arena.ts';

// Every device of a replica switches P2 -> T2 -> P2 -> T2 -> P2 in this thread, its weights built
// in its WeightArena (as a device worker does): after each switch the weights are byte for byte a
// fresh load's and digest alike, every matrix and vector lies in the arena, and after the first
// round trip the arena neither grows nor falls back to fresh memory (the new shard is written
// into the pages the old one freed).

function weightViews(weights: ModelWeights): Array<Weight['data'] | Float32Array> {
  const views: Array<Weight['data'] | Float32Array> = [];
  for (const weight of [weights.embedding, weights.lmHead]) if (weight) views.push(weight.data);
  if (weights.finalNorm) views.push(weights.finalNorm);
  for (const layer of weights.layers) {
    views.push(layer.qkv.data, layer.o.data, layer.gateUp.data, layer.down.data);
    views.push(layer.inputNorm, layer.postAttentionNorm);
    if (layer.qkvBias) views.push(layer.qkvBias);
  }
  return views;
}

async function roundTrips(
  route: ReshardRoute,
  hostWeightCache: boolean,
  reservedAtLoad = false,
  isHeldReloaded = false,
): Promise<void> {
  const checkpoint = Checkpoint.open(BF16_FIXTURE);
  const meshes = await openMeshes(2);
  try {
    const config = checkpoint.config;
    const tensorInfo = planTensorInfo(checkpoint);
    const caches = meshes.map((_, device) => {
      if (!hostWeightCache) return undefined;
      const cache = new HostWeightCache();
      for (const layout of LAYOUTS) cache.fill(checkpoint, positionOf(layout, device));
      return cache;
    });
    const states: ArenaDeviceState[] = meshes.map((_, device) =>
      loadIntoArena(checkpoint, device, reservedAtLoad),
    );
    const atLoad = states.map((state) => state.arena.capacityBytes);
    let layout = 0;
    const capacities: number[][] = [];
    for (let reshardId = 1; reshardId <= 4; reshardId++) {
      const from: ParallelConfig = LAYOUTS[layout]!;
      const to: ParallelConfig = LAYOUTS[1 - layout]!;
      const plan = planReshard(config, tensorInfo, from, to, { route, rates: RATES, isHeldReloaded });
      const viewsBefore = states.map((state) => new Set(weightViews(state.weights)));
      const embeddingBefore = states[0]!.weights.embedding!.data;
      const outcomes = await Promise.all(
        meshes.map((mesh, device) => {
          const { arena } = states[device]!;
          arena.reserve(weightArenaBytesFor(plan.devices[device]!.peakWeightBytes));
          const io = {
            ...mesh.reshardIo(reshardId, checkpoint),
            weightArena: arena,
            hostWeights: caches[device],
          };
          return executeReshard(config, plan.devices[device]!, states[device]!, io);
        }),
      );
      layout = 1 - layout;
      outcomes.forEach((outcome, device) => {
        const what = `switch ${reshardId} (${route}, cache ${hostWeightCache}) device ${device}`;
        const expected = loadDirect(checkpoint, to, device);
        expectSameWeights(outcome.weights, expected.weights);
        expect(outcome.held.digest(), what).toBe(expected.held.digest());
        if (route === 'host') expect(outcome.bytesFromHost, what).toBeGreaterThan(0);
        // Reloading, the whole new shard came from the host weight cache.
        if (isHeldReloaded) expect(outcome.bytesFromHost, what).toBe(plan.devices[device]!.bytesFromHost);
        // Every view lies in the arena, or is one the device held before and kept in place (an
        // embedding a first switch keeps from a load that did not reserve the arena).
        const { arena } = states[device]!;
        expect(
          weightViews(outcome.weights).every((view) => arena.owns(view) || viewsBefore[device]!.has(view)),
          what,
        ).toBe(true);
        // Device 0 holds the whole embedding under both layouts: kept in place, never copied,
        // unless the plan reloads every piece from the host.
        if (device === 0)
          expect(outcome.weights.embedding!.data === embeddingBefore, what).toBe(!isHeldReloaded);
        // Round trips after the first run in the memory the first one reserved, without fallbacks.
        if (reshardId > 2) expect(outcome.arenaFallbacks, what).toBe(0);
        const sum = outcome.phaseMs.sendMs + outcome.phaseMs.waitMs + outcome.phaseMs.assembleMs;
        expect(sum + outcome.phaseMs.otherMs, what).toBeGreaterThan(0);
        states[device] = { weights: outcome.weights, held: outcome.held, arena };
      });
      capacities.push(states.map((state) => state.arena.capacityBytes));
    }
    // Reserved at load for both directions' peaks (a Seesaw device), not even the first switch grows it.
    if (reservedAtLoad) expect(capacities[0]).toEqual(atLoad);
    expect(capacities[3]).toEqual(capacities[1]);
    expect(capacities[2]).toEqual(capacities[1]);
  } finally {
    for (const mesh of meshes) mesh.close('test done');
    checkpoint.close();
  }
}

describe('re-sharding in a weight arena (bf16 fixture, P2 <-> T2)', () => {
  for (const route of ['p2p', 'host', 'auto'] as const)
    for (const hostWeightCache of route === 'p2p' ? [false] : [false, true])
      it(`P2 -> T2 -> P2 -> T2 -> P2 by ${route}, host weight cache ${hostWeightCache ? 'on' : 'off'}`, () =>
        roundTrips(route, hostWeightCache));
  it('an arena reserved at load with switchArenaBytes does not grow at any switch, the first included', () =>
    roundTrips('p2p', false, true));
  it('P2 -> T2 -> P2 -> T2 -> P2 by host, reloading whole shards from the host weight cache', () =>
    roundTrips('host', true, true, true));
});
