import { describe, expect, it } from 'vitest';
import { UsageError } from './args.ts';
import { checkWebGpuPlacement, deviceWorkerUrlOf, readBackendSettings } from './backend-flags.ts';
import { readEngineSettings } from './commands/run.ts';

describe('--backend and --gpus-per-adapter', () => {
  it('default to the CPU backend, one actor per adapter', () => {
    expect(readBackendSettings({})).toEqual({ backend: 'cpu', gpusPerAdapter: 1 });
    expect(readBackendSettings({ backend: 'webgpu', 'gpus-per-adapter': '3' })).toEqual({
      backend: 'webgpu',
      gpusPerAdapter: 3,
    });
  });

  it.each([
    [{ backend: 'cuda' }, "--backend must be one of cpu, webgpu, got 'cuda'"],
    [{ 'gpus-per-adapter': '2' }, '--gpus-per-adapter needs --backend webgpu'],
    [{ backend: 'webgpu', 'gpus-per-adapter': '0' }, '--gpus-per-adapter must be an integer >= 1'],
  ])('%j is refused: %s', (values, message) => {
    expect(() => readBackendSettings(values)).toThrow(UsageError);
    expect(() => readBackendSettings(values)).toThrow(message);
  });

  it('places at most --gpus-per-adapter device actors on the one adapter reached', () => {
    expect(() => checkWebGpuPlacement(2, 2)).not.toThrow();
    expect(() => checkWebGpuPlacement(3, 2)).toThrow('--devices 3 needs --gpus-per-adapter 3');
  });

  it('a WebGPU run always goes through device workers: one device unless --devices says more', () => {
    const one = readEngineSettings({ backend: 'webgpu', 'kv-cache-memory': '1MiB' });
    expect(one.backend).toBe('webgpu');
    expect(one.cluster).toEqual({ numDevices: 1, parallel: { dp: 1, tp: 1, pp: 1 } });
    expect(one.kvCacheBytes).toBe(1024 ** 2);
    const t2 = readEngineSettings({ backend: 'webgpu', devices: '2', config: 'T2', 'gpus-per-adapter': '2' });
    expect(t2.cluster?.parallel).toEqual({ dp: 1, tp: 2, pp: 1 });
    const seesaw = readEngineSettings({
      backend: 'webgpu',
      prefill: 'P2',
      decode: 'T2',
      'gpus-per-adapter': '2',
    });
    expect(seesaw.cluster).toBeUndefined();
    expect(seesaw.seesaw?.numDevices).toBe(2);
    expect(readEngineSettings({}).backend).toBeUndefined();
  });

  it('picks each backend its own device worker entry', async () => {
    expect((await deviceWorkerUrlOf('cpu')).pathname).toMatch(/gpu-actor\/src\/device-worker\.ts$/);
    expect((await deviceWorkerUrlOf('webgpu')).pathname).toMatch(
      /webgpu-device\/src\/webgpu-device-worker\.ts$/,
    );
  });
});
