/**
 * Test support for re-shard tests that run every device of a replica in one thread: their weight
 * meshes over real MessageChannel links, direct loads of a shard, and byte-for-byte comparison of
 * two shards' weights.
 */
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import type { Weight } from '@seesaw/kernels';
import {
  type Checkpoint,
  dtypeByteSize,
  type ParallelConfig,
  parseParallelConfig,
  shardSpec,
} from '@seesaw/model';
import { expect } from 'vitest';
import { DeviceLayouts } from '../src/device-worker-layouts.ts';
import { HeldWeights } from '../src/held-weights.ts';
import { loadModelWeights, type ModelWeights } from '../src/model-weights.ts';
import { switchArenaBytes, WeightArena } from '../src/weight-arena.ts';

const TOKEN = 'reshard-mesh-test';

/** The bf16 test fixture checkpoint. */
export const BF16_FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');
/** Link rates the tests plan with (only the auto route's choices depend on them). */
export const TEST_RESHARD_RATES = { p2pBytesPerSecond: 4e9, hostBytesPerSecond: 2e9 };
/** The Seesaw pair the arena tests switch between: P2 (layout 0) and T2. */
export const P2_T2_LAYOUTS = ['D1T1P2', 'D1T2P1'].map(parseParallelConfig);

/** A device's weights built in its own weight arena, as a device worker holds them. */
export interface ArenaDeviceState {
  weights: ModelWeights;
  held: HeldWeights;
  arena: WeightArena;
}

/**
 * Device `device`'s P2 shard loaded into a fresh arena; with `reservedAtLoad`, the arena first
 * reserves both directions' switch peaks, as a Seesaw device worker does at load.
 */
export function loadIntoArena(
  checkpoint: Checkpoint,
  device: number,
  reservedAtLoad: boolean,
): ArenaDeviceState {
  const arena = new WeightArena();
  if (reservedAtLoad) {
    const [here, other] = P2_T2_LAYOUTS.map((layout) => positionOf(layout, device));
    arena.reserve(switchArenaBytes(checkpoint, here!, other!));
  }
  return { ...loadDirect(checkpoint, P2_T2_LAYOUTS[0]!, device, arena), arena };
}

/** N devices' weight meshes, opened (with hellos) in this thread. */
export async function openMeshes(numDevices: number): Promise<DeviceLayouts[]> {
  const ports = Array.from({ length: numDevices }, () =>
    new Array<MessageChannel['port1'] | undefined>(numDevices).fill(undefined),
  );
  for (let i = 0; i < numDevices; i++)
    for (let j = i + 1; j < numDevices; j++) {
      const { port1, port2 } = new MessageChannel();
      ports[i]![j] = port1;
      ports[j]![i] = port2;
    }
  return Promise.all(
    ports.map((reshardPeers, device) =>
      DeviceLayouts.open(
        { reshardPeers },
        { token: TOKEN, deviceName: `device ${device}` },
        { token: TOKEN, deviceName: `device ${device}`, hiddenSize: 256, log: () => {} },
      ),
    ),
  );
}

/** The tensor sizes planReshard needs, read from `checkpoint`. */
export function planTensorInfo(checkpoint: Checkpoint) {
  return (name: string) => {
    const info = checkpoint.info(name);
    return { dtypeBytes: dtypeByteSize(info.dtype), shape: info.shape };
  };
}

export function positionOf(parallel: ParallelConfig, device: number) {
  return {
    tp: parallel.tp,
    tpRank: device % parallel.tp,
    pp: parallel.pp,
    ppStage: Math.floor(device / parallel.tp),
  };
}

/** Device `device`'s shard under `parallel`, loaded straight from the checkpoint (into `arena` if given). */
export function loadDirect(
  checkpoint: Checkpoint,
  parallel: ParallelConfig,
  device: number,
  arena?: WeightArena,
) {
  const held = new HeldWeights();
  const weights = loadModelWeights(
    checkpoint,
    shardSpec(checkpoint.config, positionOf(parallel, device)),
    held,
    arena,
  );
  return { weights, held };
}

function expectSameWeight(actual: Weight | undefined, expected: Weight | undefined, what: string): void {
  expect(actual === undefined, what).toBe(expected === undefined);
  if (!actual || !expected) return;
  expect({ dtype: actual.dtype, rows: actual.rows, cols: actual.cols }, what).toEqual({
    dtype: expected.dtype,
    rows: expected.rows,
    cols: expected.cols,
  });
  expect(
    Buffer.from(actual.data.buffer, actual.data.byteOffset, actual.data.byteLength).equals(
      Buffer.from(expected.data.buffer, expected.data.byteOffset, expected.data.byteLength),
    ),
    what,
  ).toBe(true);
}

export function expectSameWeights(actual: ModelWeights, expected: ModelWeights): void {
  expectSameWeight(actual.embedding, expected.embedding, 'embedding');
  expectSameWeight(actual.lmHead, expected.lmHead, 'lm_head');
  expect(actual.finalNorm).toEqual(expected.finalNorm);
  expect(actual.layers).toHaveLength(expected.layers.length);
  actual.layers.forEach((layer, l) => {
    const want = expected.layers[l]!;
    for (const key of ['qkv', 'o', 'gateUp', 'down'] as const)
      expectSameWeight(layer[key], want[key], `layer ${l} ${key}`);
    expect(layer.inputNorm).toEqual(want.inputNorm);
    expect(layer.postAttentionNorm).toEqual(want.postAttentionNorm);
    expect(layer.qkvBias).toEqual(want.qkvBias);
  });
  expect(actual.numBytes).toBe(expected.numBytes);
}
