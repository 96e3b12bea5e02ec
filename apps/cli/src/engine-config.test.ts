import { ENGINE_DEFAULTS, engineConfigCheck } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { parseFlags } from './args.ts';
import { RUN_FLAGS, readEngineSettings } from './commands/run.ts';
import { buildEngineConfig, readSchedulerSettings, threadsPerDevice } from './engine-config.ts';
import type { EngineSettings } from './engine-session.ts';

function settingsOf(...flags: string[]): EngineSettings {
  return readEngineSettings(
    parseFlags('run', ['--model', 'm', '--input', 'i', '--output', 'o', ...flags], RUN_FLAGS),
  );
}

describe('buildEngineConfig', () => {
  it('takes the scheduler flags from readSchedulerSettings, refusing a zero budget by name', () => {
    const config = buildEngineConfig(
      '/models/tiny',
      settingsOf('--max-num-batched-tokens', '96', '--max-num-seqs', '5'),
    );
    expect(config.scheduler.maxNumBatchedTokens).toBe(96);
    expect(config.scheduler.maxNumSeqs).toBe(5);
    const values = parseFlags('run', ['--max-num-batched-tokens', '0'], RUN_FLAGS);
    expect(() => readSchedulerSettings(values)).toThrow(/max-num-batched-tokens/);
  });

  it('fills every default from ENGINE_DEFAULTS and passes the wire check', () => {
    const config = buildEngineConfig('/models/tiny', settingsOf('--threads', '3'));
    expect(config).toEqual({
      model: { dir: '/models/tiny' },
      parallel: { layout: 'D1', numDevices: 1, numThreadsPerDevice: 3 },
      cache: { blockSize: ENGINE_DEFAULTS.blockSize, kvCacheBytes: ENGINE_DEFAULTS.kvCacheBytes },
      scheduler: {
        maxNumBatchedTokens: ENGINE_DEFAULTS.maxNumBatchedTokens,
        maxNumSeqs: ENGINE_DEFAULTS.maxNumSeqs,
        prefillTokenBudget: ENGINE_DEFAULTS.prefillTokenBudget,
        watermark: ENGINE_DEFAULTS.seesawWatermark,
        hostLowMark: ENGINE_DEFAULTS.hostLowMark,
      },
    });
    expect(engineConfigCheck(config, 'config')).toBeUndefined();
  });

  it('splits --threads over the devices of a static and of a Seesaw layout alike', () => {
    const cluster = buildEngineConfig(
      'm',
      settingsOf('--threads', '8', '--devices', '4', '--config', 'D2T2'),
    );
    expect(cluster.parallel).toEqual({ layout: 'D2T2', numDevices: 4, numThreadsPerDevice: 2 });
    const seesaw = buildEngineConfig(
      'm',
      settingsOf(
        '--threads',
        '5',
        '--prefill',
        'P2',
        '--decode',
        'T2',
        '--host-kv-memory',
        '1MiB',
        '--watermark',
        '0.3',
      ),
    );
    expect(seesaw.parallel).toEqual({
      layout: 'P2',
      decodeLayout: 'T2',
      numDevices: 2,
      numThreadsPerDevice: 2,
      reshardRoute: 'auto',
    });
    expect(seesaw.scheduler.watermark).toBe(0.3);
    expect(seesaw.cache.hostKvBytes).toBe(1 << 20);
    expect(engineConfigCheck(seesaw, 'config')).toBeUndefined();
    expect(threadsPerDevice(1, 4)).toBe(1);
  });

  it('carries the flags the user gave, and a remote job leaves threads to the hosts when --threads is absent', () => {
    const given = settingsOf(
      '--max-num-batched-tokens',
      '64',
      '--max-num-seqs',
      '8',
      '--kv-cache-memory',
      '1MiB',
    );
    const local = buildEngineConfig('m', given);
    expect(local.scheduler).toMatchObject({ maxNumBatchedTokens: 64, maxNumSeqs: 8 });
    expect(local.cache.kvCacheBytes).toBe(1 << 20);
    const remote = buildEngineConfig('m', settingsOf('--host-kv-memory', '2MiB', '--preemption', 'swap'), {
      parallelism: { dp: 2, tp: 1, pp: 1 },
      deviceMemoryBytes: 64 << 20,
    });
    expect(remote.parallel).toEqual({ layout: 'D2', numDevices: 2 });
    expect(remote.cache).toMatchObject({
      deviceMemoryBytes: 64 << 20,
      hostKvBytes: 2 << 20,
      preemptionMode: 'swap',
    });
    expect(engineConfigCheck(remote, 'config')).toBeUndefined();
  });
});
