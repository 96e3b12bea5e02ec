import { describe, expect, it } from 'vitest';
import { coordinatorToDeviceSchemas } from './messages/coordinator-device.ts';
import { formatParallelConfig, ParallelConfigError, parseParallelConfig } from './parallel-layout.ts';

describe('the layout grammar D<dp>T<tp>P<pp>', () => {
  it('formats and parses back every layout, short and all-letters (wire) form', () => {
    for (let dp = 1; dp <= 4; dp++) {
      for (let tp = 1; tp <= 8; tp *= 2) {
        for (let pp = 1; pp <= 3; pp++) {
          const config = { dp, tp, pp };
          const short = formatParallelConfig(config);
          const wire = formatParallelConfig(config, { allLetters: true });
          expect(wire).toBe(`D${dp}T${tp}P${pp}`);
          expect(parseParallelConfig(short)).toEqual(config);
          expect(parseParallelConfig(wire)).toEqual(config);
        }
      }
    }
    expect(formatParallelConfig({ dp: 1, tp: 1, pp: 1 })).toBe('D1');
    expect(formatParallelConfig({ dp: 1, tp: 2, pp: 2 })).toBe('T2P2');
  });

  it('loadShard checks its ranks against the layout with the same parser', () => {
    const { rule } = coordinatorToDeviceSchemas.loadShard;
    const load = { parallelism: 'D1T2P2', dpRank: 0, tpRank: 1, ppStage: 1 };
    expect(rule(load as never, [])).toBeUndefined();
    expect(rule({ ...load, tpRank: 2 } as never, [])).toMatch(/outside D1T2P2/);
  });

  it('names what is wrong in a bad layout', () => {
    expect(() => parseParallelConfig('T2D2')).toThrow(ParallelConfigError);
    expect(() => parseParallelConfig('T0')).toThrow(/T0 must be a whole number/);
    expect(() => formatParallelConfig({ dp: 1, tp: 0, pp: 1 })).toThrow(/tp must be a positive integer/);
  });
});
