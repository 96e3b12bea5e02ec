import { describe, expect, it } from 'vitest';
import { UsageError } from './args.ts';
import { defaultSeesawHostKvBytes, readSeesawSettings } from './seesaw-flags.ts';

describe('readSeesawSettings', () => {
  it('is absent without --prefill/--decode', () => {
    expect(readSeesawSettings({})).toBeUndefined();
    expect(readSeesawSettings({ devices: '2', config: 'T2' })).toBeUndefined();
  });

  it('reads the pair with the paper defaults', () => {
    expect(readSeesawSettings({ prefill: 'P2', decode: 'd1t2p1' })).toEqual({
      prefill: { dp: 1, tp: 1, pp: 2 },
      decode: { dp: 1, tp: 2, pp: 1 },
      numDevices: 2,
      prefillTokenBudget: 4096,
      watermark: 0.1,
      hostLowMark: 0.2,
      reshardRoute: 'auto',
    });
  });

  it('reads every Seesaw flag', () => {
    expect(
      readSeesawSettings({
        prefill: 'D2P2',
        decode: 'D2T2',
        devices: '4',
        'device-memory': '64MiB',
        'prefill-token-budget': '1024',
        watermark: '0.05',
        'host-low-mark': '.5',
        'reshard-route': 'host',
        'host-weight-cache': 'off',
      }),
    ).toEqual({
      prefill: { dp: 2, tp: 1, pp: 2 },
      decode: { dp: 2, tp: 2, pp: 1 },
      numDevices: 4,
      prefillTokenBudget: 1024,
      watermark: 0.05,
      hostLowMark: 0.5,
      reshardRoute: 'host',
      hostWeightCache: 'off',
      deviceMemoryBytes: 64 * 1024 ** 2,
    });
  });

  it.each([
    [{ prefill: 'P2' }, '--prefill needs --decode'],
    [{ decode: 'T2' }, '--decode needs --prefill'],
    [{ prefill: 'P2', decode: 'T2', config: 'T2' }, '--prefill/--decode replace --config'],
    [{ prefill: 'D2P2', decode: 'T4' }, 'differ in DP (2 vs 1)'],
    [{ prefill: 'P2', decode: 'T4' }, 'use 2 and 4 devices per replica'],
    [
      { prefill: 'P2', decode: 'T2', devices: '4' },
      '--devices 4 does not match --prefill P2, which needs 2 devices',
    ],
    [{ prefill: 'Q2', decode: 'T2' }, '--prefill: parallel configuration "Q2" is not of the form'],
    [
      { prefill: 'P2', decode: 'T2', watermark: '1.5' },
      '--watermark must be a number from 0 up to (not including) 1',
    ],
    [{ prefill: 'P2', decode: 'T2', watermark: '1' }, '--watermark must be a number from 0 up to'],
    [
      { prefill: 'P2', decode: 'T2', 'host-low-mark': '1.01' },
      '--host-low-mark must be a number from 0 to 1',
    ],
    [{ prefill: 'P2', decode: 'T2', 'host-low-mark': 'x' }, '--host-low-mark must be a number from 0 to 1'],
    [
      { prefill: 'P2', decode: 'T2', 'reshard-route': 'nvlink' },
      '--reshard-route must be one of auto, p2p, host',
    ],
    [
      { prefill: 'P2', decode: 'T2', 'host-weight-cache': 'yes' },
      "--host-weight-cache must be one of on, off, got 'yes'",
    ],
    [{ 'host-weight-cache': 'off' }, '--host-weight-cache needs --prefill X --decode Y'],
    [
      { prefill: 'P2', decode: 'T2', 'prefill-token-budget': '0' },
      '--prefill-token-budget must be an integer >= 1',
    ],
    [{ prefill: 'P2', decode: 'T2', 'kv-cache-memory': '1GiB' }, '--kv-cache-memory does not apply'],
    [{ prefill: 'P2', decode: 'T2', 'max-num-batched-tokens': '64' }, 'use --prefill-token-budget'],
    [{ prefill: 'P2', decode: 'T2', preemption: 'swap' }, '--preemption does not apply'],
    [{ watermark: '0.1' }, '--watermark needs --prefill X --decode Y'],
    [{ 'reshard-route': 'p2p', config: 'T2' }, '--reshard-route needs --prefill X --decode Y'],
  ])('refuses %j', (values, message) => {
    expect(() => readSeesawSettings(values)).toThrow(UsageError);
    expect(() => readSeesawSettings(values)).toThrow(message);
  });
});

describe('defaultSeesawHostKvBytes', () => {
  it('is a quarter of the free RAM, at most 4 GiB', () => {
    expect(defaultSeesawHostKvBytes(8 * 1024 ** 3)).toBe(2 * 1024 ** 3);
    expect(defaultSeesawHostKvBytes(64 * 1024 ** 3)).toBe(4 * 1024 ** 3);
    expect(defaultSeesawHostKvBytes(1001)).toBe(250);
    expect(defaultSeesawHostKvBytes()).toBeGreaterThan(0);
  });
});
