import { describe, expect, it } from 'vitest';
import { UsageError } from './args.ts';
import { buildEngineConfig } from './engine-config.ts';
import { kvDtypeForBackend, readHostKvSettings } from './host-kv-flags.ts';

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

  it('reads --kv-dtype into the engine config, refusing an unknown dtype by name', () => {
    const settings = readHostKvSettings({ 'kv-dtype': 'bf16', 'host-kv-memory': '1GiB' });
    expect(settings.kvDtype).toBe('bf16');
    expect(buildEngineConfig('/m', settings).cache.kvDtype).toBe('bf16');
    expect(readHostKvSettings({})).not.toHaveProperty('kvDtype');
    expect(buildEngineConfig('/m', readHostKvSettings({})).cache.kvDtype).toBeUndefined();
    for (const value of ['auto', 'f16', 'f32'])
      expect(readHostKvSettings({ 'kv-dtype': value }).kvDtype).toBe(value);
    expect(() => readHostKvSettings({ 'kv-dtype': 'fp8' })).toThrow(
      new UsageError("--kv-dtype must be one of auto, bf16, f16, f32, got 'fp8'"),
    );
  });

  it('keeps the WebGPU backend on f32 KV: auto means f32 there, a 16-bit dtype is refused', () => {
    expect(kvDtypeForBackend('auto', 'webgpu')).toBe('f32');
    expect(kvDtypeForBackend('f32', 'webgpu')).toBe('f32');
    expect(kvDtypeForBackend(undefined, 'webgpu')).toBeUndefined();
    expect(() => kvDtypeForBackend('bf16', 'webgpu')).toThrow(/--kv-dtype bf16 needs --backend cpu/);
    expect(kvDtypeForBackend('bf16', 'cpu')).toBe('bf16');
    expect(kvDtypeForBackend('auto', 'cpu')).toBe('auto');
  });
});
