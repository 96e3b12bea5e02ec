import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import type { Weight } from '@seesaw/kernels';
import {
  Checkpoint,
  dtypeByteSize,
  generateCheckpoint,
  type ParallelConfig,
  parseParallelConfig,
  planReshard,
  type ReshardRoute,
  shardSpec,
} from '@seesaw/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceLayouts } from './device-worker-layouts.ts';
import { HeldWeights } from './held-weights.ts';
import { loadModelWeights, type ModelWeights } from './model-weights.ts';
import { executeReshard } from './reshard-executor.ts';

// Every device of one replica re-shards in this thread over real MessageChannel links (the weight
// mesh of DeviceLayouts, frames encoded and decoded): the weights each ends with must be byte for
// byte what loading its new shard straight from the checkpoint gives, its raw slices must digest
// alike, and the bytes it kept / received / sent / read must be the plan's.

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');
const TOKEN = 'reshard-executor-test';
const RATES = { p2pBytesPerSecond: 4e9, hostBytesPerSecond: 2e9 };

/** N devices' weight meshes, opened (with hellos) in this thread. */
async function openMeshes(numDevices: number): Promise<DeviceLayouts[]> {
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

function positionOf(parallel: ParallelConfig, device: number) {
  return {
    tp: parallel.tp,
    tpRank: device % parallel.tp,
    pp: parallel.pp,
    ppStage: Math.floor(device / parallel.tp),
  };
}

function loadDirect(checkpoint: Checkpoint, parallel: ParallelConfig, device: number) {
  const held = new HeldWeights();
  const weights = loadModelWeights(
    checkpoint,
    shardSpec(checkpoint.config, positionOf(parallel, device)),
    held,
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

function expectSameWeights(actual: ModelWeights, expected: ModelWeights): void {
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

/** Re-shards a replica loaded under `from` to `to` and checks every device against a direct load. */
async function checkSwitch(dir: string, from: string, to: string, route: ReshardRoute): Promise<void> {
  const checkpoint = Checkpoint.open(dir);
  const meshes = await openMeshes(parseParallelConfig(from).tp * parseParallelConfig(from).pp);
  try {
    const config = checkpoint.config;
    const fromConfig = parseParallelConfig(from);
    const toConfig = parseParallelConfig(to);
    const plan = planReshard(
      config,
      (name) => {
        const info = checkpoint.info(name);
        return { dtypeBytes: dtypeByteSize(info.dtype), shape: info.shape };
      },
      fromConfig,
      toConfig,
      { route, rates: RATES },
    );
    const olds = meshes.map((_, device) => loadDirect(checkpoint, fromConfig, device));
    const outcomes = await Promise.all(
      meshes.map((mesh, device) =>
        executeReshard(config, plan.devices[device]!, olds[device]!, mesh.reshardIo(1, checkpoint)),
      ),
    );
    outcomes.forEach((outcome, device) => {
      const devicePlan = plan.devices[device]!;
      const expected = loadDirect(checkpoint, toConfig, device);
      expectSameWeights(outcome.weights, expected.weights);
      expect(outcome.held.digest()).toBe(expected.held.digest());
      expect({
        bytesKept: outcome.bytesKept,
        bytesReceived: outcome.bytesReceived,
        bytesSent: outcome.bytesSent,
        bytesFromHost: outcome.bytesFromHost,
        peakWeightBytes: outcome.peakWeightBytes,
      }).toEqual({
        bytesKept: devicePlan.bytesKept,
        bytesReceived: devicePlan.bytesReceived,
        bytesSent: devicePlan.bytesSent,
        bytesFromHost: devicePlan.bytesFromHost,
        peakWeightBytes: devicePlan.peakWeightBytes,
      });
      // The old shard was consumed unit by unit.
      expect(olds[device]!.held.size).toBe(0);
      expect(olds[device]!.weights.layers.every((layer) => layer === undefined)).toBe(true);
    });
    if (route === 'host') expect(outcomes.every((o) => o.bytesReceived === 0)).toBe(true);
    if (route === 'p2p') expect(outcomes.every((o) => o.bytesFromHost === 0)).toBe(true);
  } finally {
    for (const mesh of meshes) mesh.close('test done');
    checkpoint.close();
  }
}

const PAIRS: Array<[string, string]> = [
  ['D1T1P2', 'D1T2P1'],
  ['D1T2P1', 'D1T1P2'],
  ['D1T1P4', 'D1T4P1'],
  ['D1T4P1', 'D1T2P2'],
  ['D1T2P2', 'D1T1P4'],
];

describe('executeReshard on the bf16 fixture', () => {
  for (const [from, to] of PAIRS)
    for (const route of ['p2p', 'host', 'auto'] as const)
      it(`${from} -> ${to} by ${route}`, () => checkSwitch(FIXTURE, from, to, route));

  it('refuses a plan made for another position, and pieces no peer sends time out only per piece', async () => {
    const checkpoint = Checkpoint.open(FIXTURE);
    const [mesh] = await openMeshes(1);
    try {
      const plan = planReshard(
        checkpoint.config,
        (name) => ({ dtypeBytes: 2, shape: checkpoint.info(name).shape }),
        parseParallelConfig('D1T1P2'),
        parseParallelConfig('D1T2P1'),
        { route: 'host', rates: RATES },
      );
      const old = loadDirect(checkpoint, parseParallelConfig('D1T1P2'), 0);
      await expect(
        executeReshard(checkpoint.config, plan.devices[1]!, old, mesh!.reshardIo(1, checkpoint)),
      ).rejects.toThrow(/plan of device 1 starts from .*"ppStage":1.*but this device holds .*"ppStage":0/);
    } finally {
      mesh?.close('test done');
      checkpoint.close();
    }
  });
});

describe('executeReshard on a generated f16 checkpoint with tied embeddings and attention bias', () => {
  let dir = '';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-reshard-exec-'));
    await generateCheckpoint({
      shape: 'tiny',
      seed: 5,
      dtype: 'f16',
      outDir: dir,
      tieWordEmbeddings: true,
      attentionBias: true,
    });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const [from, to] of PAIRS.slice(0, 3))
    for (const route of ['p2p', 'host', 'auto'] as const)
      it(`${from} -> ${to} by ${route}`, () => checkSwitch(dir, from, to, route));
});
