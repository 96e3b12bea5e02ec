import { describe, expect, it } from 'vitest';
import { UsageError } from './args.ts';
import { readClusterSettings } from './cluster-flags.ts';

describe('readClusterSettings', () => {
  it('is absent without --devices and --config', () => {
    expect(readClusterSettings({})).toBeUndefined();
  });

  it('reads a matching device count, layout and device memory', () => {
    expect(readClusterSettings({ devices: '4', config: 't2p2', 'device-memory': '1GiB' })).toEqual({
      numDevices: 4,
      parallel: { dp: 1, tp: 2, pp: 2 },
      deviceMemoryBytes: 1024 ** 3,
    });
    expect(readClusterSettings({ devices: '1', config: 'D1' })).toEqual({
      numDevices: 1,
      parallel: { dp: 1, tp: 1, pp: 1 },
    });
  });

  it.each([
    [
      { devices: '3', config: 'T2P2' },
      '--devices 3 does not match --config T2P2, which needs dp * tp * pp = 1 * 2 * 2 = 4',
    ],
    [{ devices: '2' }, '--devices needs --config'],
    [
      { devices: '2', config: 'T2', 'kv-cache-memory': '1GiB' },
      '--kv-cache-memory does not apply to a cluster',
    ],
    [{ config: 'T2' }, '--config needs --devices N'],
    [{ 'device-memory': '1GiB' }, '--device-memory needs --devices and --config'],
    [{ devices: '2', config: 'X2' }, '--config: parallel configuration "X2" is not of the form'],
    [{ devices: '0', config: 'D1' }, '--devices must be an integer >= 1'],
    [{ devices: '2', config: 'T2', 'device-memory': '1GB' }, "unknown unit 'GB'"],
  ])('refuses %j', (values, message) => {
    expect(() => readClusterSettings(values)).toThrow(UsageError);
    expect(() => readClusterSettings(values)).toThrow(message);
  });
});
