import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Checkpoint, generateCheckpoint, shardSpec } from '@seesaw/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceOutOfMemoryError, kvCacheBudget, shardWeightBytes } from './device-worker-memory.ts';
import { loadModelWeights } from './model-weights.ts';

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');
const POSITIONS = [
  { tp: 1, tpRank: 0, pp: 1, ppStage: 0 },
  { tp: 2, tpRank: 1, pp: 1, ppStage: 0 },
  { tp: 1, tpRank: 0, pp: 2, ppStage: 0 },
  { tp: 1, tpRank: 0, pp: 2, ppStage: 1 },
  { tp: 4, tpRank: 3, pp: 2, ppStage: 1 },
  { tp: 2, tpRank: 0, pp: 4, ppStage: 2 },
];

/** shardWeightBytes (header only) must equal what loading the shard really holds. */
function checkAgainstLoaded(dir: string): void {
  const checkpoint = Checkpoint.open(dir);
  try {
    for (const position of POSITIONS) {
      const spec = shardSpec(checkpoint.config, position);
      expect(shardWeightBytes(checkpoint, spec), JSON.stringify(position)).toBe(
        loadModelWeights(checkpoint, spec).numBytes,
      );
    }
  } finally {
    checkpoint.close();
  }
}

describe('shardWeightBytes', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'seesaw-weight-bytes-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('equals the loaded bytes of every shard of the fixture', () => checkAgainstLoaded(FIXTURE));

  it.each([
    ['tied f32 with attention bias', { dtype: 'f32' as const, tieWordEmbeddings: true, attentionBias: true }],
    ['untied f16', { dtype: 'f16' as const, tieWordEmbeddings: false, attentionBias: false }],
  ])('equals the loaded bytes of every shard of a generated %s model', async (name, options) => {
    const outDir = join(dir, name.replaceAll(' ', '-'));
    await generateCheckpoint({ shape: 'tiny', seed: 3, outDir, ...options });
    checkAgainstLoaded(outDir);
  });
});

describe('kvCacheBudget', () => {
  it('leaves the device memory minus the weights to the KV cache', () => {
    expect(kvCacheBudget(10_000, 2_500)).toBe(7_500);
  });

  it('refuses weights that do not fit', () => {
    expect(() => kvCacheBudget(1_000, 1_000)).toThrow(DeviceOutOfMemoryError);
    expect(() => kvCacheBudget(1_000, 4_000)).toThrow(
      /weights of 4000 bytes do not fit the device memory of 1000 bytes/,
    );
  });
});
