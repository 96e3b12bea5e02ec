import { describe, expect, it } from 'vitest';
import {
  ATTENTION_SHAPE,
  DECODE_KV_RING_BYTES,
  decodeKvRingLayers,
  QUICK_DECODE_KV_RING_BYTES,
} from './profile-kernels-shapes.ts';

describe('decode attention KV ring', () => {
  it('cycles the fewest layers whose KV covers the ring, which outgrows a CPU last-level cache', () => {
    // The profile's decode layer: 32 sequences x 256 tokens of f32 K and V at the TP-2 shape.
    const { kvHeads, headDim } = ATTENTION_SHAPE;
    const layerBytes = 2 * 32 * 256 * kvHeads * headDim * 4;
    const layers = decodeKvRingLayers(layerBytes, DECODE_KV_RING_BYTES);
    expect(layers * layerBytes).toBeGreaterThanOrEqual(DECODE_KV_RING_BYTES);
    expect((layers - 1) * layerBytes).toBeLessThan(DECODE_KV_RING_BYTES);
    // Larger than any last-level cache of the CPUs the engine targets (tens of MiB).
    expect(DECODE_KV_RING_BYTES).toBeGreaterThanOrEqual(64 * 1024 ** 2);
    expect(decodeKvRingLayers(layerBytes, QUICK_DECODE_KV_RING_BYTES)).toBeGreaterThan(1);
    expect(decodeKvRingLayers(3 * DECODE_KV_RING_BYTES, DECODE_KV_RING_BYTES)).toBe(1);
    expect(() => decodeKvRingLayers(0, DECODE_KV_RING_BYTES)).toThrow(/positive/);
  });
});
