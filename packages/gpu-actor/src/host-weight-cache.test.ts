import { join } from 'node:path';
import { Checkpoint, dtypeByteSize, shardSpec, shardTensorSlices } from '@seesaw/model';
import { afterAll, describe, expect, it } from 'vitest';
import { HostWeightCache } from './host-weight-cache.ts';
import { checkpointSliceSource } from './model-weights.ts';
import { rectElements, sliceRect } from './slice-geometry.ts';

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');

describe('HostWeightCache', () => {
  const checkpoint = Checkpoint.open(FIXTURE);
  afterAll(() => checkpoint.close());
  const p2Stage0 = { tp: 1, tpRank: 0, pp: 2, ppStage: 0 };
  const t2Rank1 = { tp: 2, tpRank: 1, pp: 1, ppStage: 0 };

  it('holds each filled shard byte for byte as the checkpoint has it, in shared memory, filled once', () => {
    const cache = new HostWeightCache();
    expect(cache.has(p2Stage0)).toBe(false);
    const first = cache.fill(checkpoint, p2Stage0);
    const second = cache.fill(checkpoint, t2Rank1);
    expect(cache.has(p2Stage0) && cache.has(t2Rank1)).toBe(true);
    expect(cache.fill(checkpoint, t2Rank1)).toBe(0);
    expect(cache.numBytes).toBe(first + second);
    const source = checkpointSliceSource(checkpoint);
    for (const position of [p2Stage0, t2Rank1]) {
      const slices = shardTensorSlices(shardSpec(checkpoint.config, position));
      let shardBytes = 0;
      for (const slice of slices) {
        const info = checkpoint.info(slice.name);
        const rect = sliceRect(slice, info.shape);
        const numBytes = rectElements(rect) * dtypeByteSize(info.dtype);
        shardBytes += numBytes;
        const expected = new Uint8Array(numBytes);
        source.read(slice, expected);
        const copied = new Uint8Array(numBytes);
        expect(cache.copyInto(slice, copied, rect)).toBe(numBytes);
        expect(
          Buffer.compare(copied, expected),
          `${slice.name} ${slice.axis} [${slice.start}, ${slice.end})`,
        ).toBe(0);
      }
      // The T2 shard shares no slice with P2's stage 0 except what it contains: the norms.
      if (position === p2Stage0) expect(first).toBe(shardBytes);
      else expect(second).toBeLessThan(shardBytes);
    }
  });

  it('names a piece outside every filled shard', () => {
    const cache = new HostWeightCache();
    cache.fill(checkpoint, p2Stage0);
    const lastLayer = checkpoint.config.numLayers - 1;
    const slice = shardSpec(checkpoint.config, { ...p2Stage0, ppStage: 1 }).layerSlices.find(
      (layer) => layer.layer === lastLayer,
    )!.down;
    const info = checkpoint.info(slice.name);
    const rect = sliceRect(slice, info.shape);
    expect(() => cache.copyInto(slice, new Uint8Array(rectElements(rect) * 2), rect)).toThrow(
      /is not held by this device/,
    );
  });
});
