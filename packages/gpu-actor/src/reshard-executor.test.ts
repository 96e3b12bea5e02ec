import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Checkpoint,
  dtypeByteSize,
  generateCheckpoint,
  parseParallelConfig,
  planReshard,
  type ReshardRoute,
} from '@seesaw/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSameWeights, loadDirect, openMeshes } from '../test/reshard-mesh-test-support.ts';
import { executeReshard } from './reshard-executor.ts';

// Every device of one replica re-shards in this thread over real MessageChannel links (the weight
// mesh of DeviceLayouts, frames encoded and decoded): the weights each ends with must be byte for
// byte what loading its new shard straight from the checkpoint gives, its raw slices must digest
// alike, and the bytes it kept / received / sent / read must be the plan's.

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');
const RATES = { p2pBytesPerSecond: 4e9, hostBytesPerSecond: 2e9 };

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
