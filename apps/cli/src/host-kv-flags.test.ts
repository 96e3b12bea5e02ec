import { describe, expect, it } from 'vitest';
import { UsageError } from './args.ts';
import { readHostKvSettings } from './host-kv-flags.ts';

describe('host KV flags', () => {
  it('reads a size and a policy', () => {
    expect(readHostKvSettings({ 'host-kv-memory': '2GiB', preemption: 'swap' })).toEqual({
      hostKvBytes: 2 * 1024 ** 3,
      preemptionMode: 'swap',
    });
    expect(readHostKvSettings({})).toEqual({ hostKvBytes: undefined, preemptionMode: undefined });
    expect(readHostKvSettings({ preemption: 'recompute' }).preemptionMode).toBe('recompute');
  });

  it('refuses an unknown policy and swapping without a tier', () => {
    expect(() => readHostKvSettings({ preemption: 'maybe' })).toThrow(UsageError);
    expect(() => readHostKvSettings({ preemption: 'swap' })).toThrow(/needs --host-kv-memory/);
    expect(() => readHostKvSettings({ preemption: 'swap', cluster: 'ws://h:1' })).toThrow(
      /needs --host-kv-memory/,
    );
  });

  it('allows a tier on a remote cluster (a kv-store on every host of the job)', () => {
    expect(readHostKvSettings({ 'host-kv-memory': '1GiB', preemption: 'swap', cluster: 'ws://h:1' })).toEqual(
      {
        hostKvBytes: 1024 ** 3,
        preemptionMode: 'swap',
      },
    );
  });

  it('allows a tier with --devices (a kv-store worker for the local cluster)', () => {
    expect(readHostKvSettings({ 'host-kv-memory': '1GiB', preemption: 'swap', devices: '2' })).toEqual({
      hostKvBytes: 1024 ** 3,
      preemptionMode: 'swap',
    });
  });
});
