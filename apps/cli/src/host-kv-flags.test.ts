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

  it('refuses an unknown policy, swapping without a tier, and a tier on a remote cluster', () => {
    expect(() => readHostKvSettings({ preemption: 'maybe' })).toThrow(UsageError);
    expect(() => readHostKvSettings({ preemption: 'swap' })).toThrow(/needs --host-kv-memory/);
    expect(() => readHostKvSettings({ 'host-kv-memory': '1GiB', cluster: 'hosts.json' })).toThrow(
      /not supported with --cluster/,
    );
  });

  it('allows a tier with --devices (a kv-store worker for the local cluster)', () => {
    expect(readHostKvSettings({ 'host-kv-memory': '1GiB', preemption: 'swap', devices: '2' })).toEqual({
      hostKvBytes: 1024 ** 3,
      preemptionMode: 'swap',
    });
  });
});
