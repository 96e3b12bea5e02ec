import { describe, expect, it } from 'vitest';
import { chooseHostWeightCache } from './host-weight-cache-choice.ts';

describe('chooseHostWeightCache', () => {
  const GiB = 1024 ** 3;
  it('keeps what --host-weight-cache says, whatever the free memory', () => {
    expect(chooseHostWeightCache('on', 100 * GiB, 1 * GiB)).toEqual({ isOn: true });
    expect(chooseHostWeightCache('off', 1, 100 * GiB)).toEqual({ isOn: false });
  });

  it('defaults to on when about 2.25x the weights fit in half the free memory, else off saying why', () => {
    expect(chooseHostWeightCache(undefined, 1 * GiB, 8 * GiB)).toEqual({ isOn: true });
    expect(chooseHostWeightCache(undefined, (4 / 2.25) * GiB, 8 * GiB)).toEqual({ isOn: true });
    const off = chooseHostWeightCache(undefined, 4 * GiB, 8 * GiB);
    expect(off.isOn).toBe(false);
    expect(off.why).toMatch(
      /host weight cache off: it would take about 9\.0 GiB, more than half the 8\.0 GiB free/,
    );
  });
});
