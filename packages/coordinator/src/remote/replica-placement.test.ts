import { describe, expect, it } from 'vitest';
import { placeReplicas } from './replica-placement.ts';

describe('placeReplicas', () => {
  it('spreads replicas over the hosts with the most free devices, ties to the first', () => {
    const hosts = [
      { name: 'a', freeDevices: 2 },
      { name: 'b', freeDevices: 2 },
    ];
    expect(placeReplicas(hosts, 2, 1)).toEqual(['a', 'b']);
    expect(placeReplicas(hosts, 4, 1)).toEqual(['a', 'b', 'a', 'b']);
    expect(
      placeReplicas(
        [
          { name: 'a', freeDevices: 1 },
          { name: 'b', freeDevices: 3 },
        ],
        3,
        1,
      ),
    ).toEqual(['b', 'b', 'a']);
  });

  it('keeps a replica on one host', () => {
    const hosts = [
      { name: 'a', freeDevices: 3 },
      { name: 'b', freeDevices: 2 },
    ];
    expect(placeReplicas(hosts, 2, 2)).toEqual(['a', 'b']);
    // Five free devices in all, but no host has two left for the third replica.
    expect(() => placeReplicas(hosts, 3, 2)).toThrow(
      /cannot place 3 replicas of 2 devices each.*a \(3 free\), b \(2 free\)/,
    );
    expect(() => placeReplicas([], 1, 1)).toThrow(/no hosts/);
  });

  it('does not change its input', () => {
    const hosts = [{ name: 'a', freeDevices: 2 }];
    placeReplicas(hosts, 2, 1);
    expect(hosts).toEqual([{ name: 'a', freeDevices: 2 }]);
  });
});
