import { describe, expect, it } from 'vitest';
import { placeDevices, placeReplicas } from './replica-placement.ts';

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

describe('placeDevices', () => {
  const two = [
    { name: 'a', freeDevices: 1 },
    { name: 'b', freeDevices: 1 },
  ];

  it('keeps whole replicas on one host when they fit, as placeReplicas', () => {
    const hosts = [
      { name: 'a', freeDevices: 2 },
      { name: 'b', freeDevices: 2 },
    ];
    expect(placeDevices(hosts, 2, 2, true)).toEqual(['a', 'a', 'b', 'b']);
  });

  it('splits a replica over hosts only when allowed and when enough devices are free', () => {
    expect(placeDevices(two, 1, 2, true)).toEqual(['a', 'b']);
    expect(() => placeDevices(two, 1, 2, false)).toThrow(/cannot place 1 replicas of 2 devices/);
    expect(() => placeDevices(two, 2, 2, true)).toThrow(/cannot place 2 replicas of 2 devices/);
    const uneven = [
      { name: 'a', freeDevices: 3 },
      { name: 'b', freeDevices: 2 },
    ];
    // Both fit whole (a then b); four devices fit no host: a's three, then one of b's.
    expect(placeDevices(uneven, 2, 2, true)).toEqual(['a', 'a', 'b', 'b']);
    expect(placeDevices(uneven, 1, 4, true)).toEqual(['a', 'a', 'a', 'b']);
    // The first replica fits b whole; the second takes what is left of a, then of b.
    const tight = [
      { name: 'a', freeDevices: 1 },
      { name: 'b', freeDevices: 3 },
    ];
    expect(placeDevices(tight, 2, 2, true)).toEqual(['b', 'b', 'a', 'b']);
  });
});
