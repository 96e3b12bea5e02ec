import { join } from 'node:path';
import { loadModelConfig, type ParallelConfig, parseParallelConfig, validateForModel } from '@seesaw/model';
import { describe, expect, it } from 'vitest';
import { replanConfig } from './replan.ts';

/** The tiny-llama fixture's shape: 8 heads, 4 KV heads, MLP 768, 4 layers. */
const TINY = loadModelConfig(join(import.meta.dirname, '../../../../fixtures/tiny-llama-bf16'));

const name = (c: ParallelConfig | null) => (c === null ? null : `D${c.dp}T${c.tp}P${c.pp}`);
const replan = (previous: string, numHealthy: number, minDevicesPerReplica?: number, model = TINY) =>
  name(replanConfig(parseParallelConfig(previous), numHealthy, model, { minDevicesPerReplica }));

describe('replanConfig', () => {
  it('uses every healthy device when it can, preferring replicas over splitting', () => {
    expect(replan('T2P2', 3)).toBe('D3T1P1');
    expect(replan('T2', 1)).toBe('D1T1P1');
    expect(replan('D2T2', 3)).toBe('D3T1P1');
    expect(replan('T2P2', 7)).toBe('D7T1P1');
  });

  it('keeps the previous replica shape when it uses as many devices as anything else', () => {
    expect(replan('T2P2', 4)).toBe('D1T2P2');
    expect(replan('T2', 6, 2)).toBe('D3T2P1');
    expect(replan('P2', 6, 2)).toBe('D3T1P2');
  });

  it('spreads a replica over at least minDevicesPerReplica devices', () => {
    // T3 does not divide 8 heads; P3 splits 4 layers 2/1/1.
    expect(replan('T2P2', 3, 2)).toBe('D1T1P3');
    // Neither shape kept: most replicas, then the larger TP.
    expect(replan('T4', 6, 2)).toBe('D3T2P1');
    expect(replan('T2P2', 3, 3, { ...TINY, numHeads: 6, numKvHeads: 6, intermediateSize: 768 })).toBe(
      'D1T3P1',
    );
  });

  it('gives null when no valid configuration fits', () => {
    expect(replan('D1', 0)).toBeNull();
    expect(replan('T4', 3, 4)).toBeNull();
    // 5 devices, each replica needing 5: T5 does not divide the heads, P5 is more than 4 layers.
    expect(replan('T2P2', 5, 5)).toBeNull();
  });

  it('rejects a negative or fractional device count', () => {
    expect(() => replan('T2', -1)).toThrow(RangeError);
    expect(() => replan('T2', 1.5)).toThrow(RangeError);
  });

  it('never uses fewer devices than the best valid configuration found by brute force', () => {
    const isValid = (c: ParallelConfig) => {
      try {
        validateForModel(c, TINY);
        return true;
      } catch {
        return false;
      }
    };
    for (let numHealthy = 1; numHealthy <= 12; numHealthy++) {
      for (const minPerReplica of [1, 2, 4]) {
        let mostDevices = 0;
        for (let dp = 1; dp <= numHealthy; dp++)
          for (let tp = 1; dp * tp <= numHealthy; tp++)
            for (let pp = 1; dp * tp * pp <= numHealthy; pp++)
              if (tp * pp >= minPerReplica && isValid({ dp, tp, pp }))
                mostDevices = Math.max(mostDevices, dp * tp * pp);
        const chosen = replanConfig({ dp: 1, tp: 2, pp: 2 }, numHealthy, TINY, {
          minDevicesPerReplica: minPerReplica,
        });
        if (mostDevices === 0) {
          expect(chosen).toBeNull();
          continue;
        }
        expect(chosen).not.toBeNull();
        const { dp, tp, pp } = chosen!;
        expect(isValid(chosen!)).toBe(true);
        expect(tp * pp).toBeGreaterThanOrEqual(minPerReplica);
        expect(dp * tp * pp).toBe(mostDevices);
      }
    }
  });
});
