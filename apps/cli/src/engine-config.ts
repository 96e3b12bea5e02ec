/**
 * The one function that turns the parsed flags into the EngineConfig every session runs with:
 * the in-process device, a local cluster, a Seesaw pair and a job on the coordinator all take
 * their threads per device, memory budgets and scheduler figures from here (defaults from
 * ENGINE_DEFAULTS), instead of each adapter working them out again.
 */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { formatParallelConfig, numDevices, type ParallelConfig } from '@seesaw/model';
import { ENGINE_DEFAULTS, type EngineConfig } from '@seesaw/protocol';
import { type FlagValues, optionalInteger } from './args.ts';
import type { EngineSettings } from './engine-session.ts';

/** Where a job on a coordinator runs: its layout, and what its client said about threads and memory. */
export interface RemotePlacement {
  parallelism: ParallelConfig;
  /** Absent: each host's cores over its devices. */
  numThreadsPerDevice?: number;
  deviceMemoryBytes?: number;
}

/** The scheduler flags, read the same way by every command that runs an engine (defaults come in buildEngineConfig). */
export function readSchedulerSettings(
  values: FlagValues,
): Pick<EngineSettings, 'maxNumBatchedTokens' | 'maxNumSeqs'> {
  return {
    maxNumBatchedTokens: optionalInteger(values, 'max-num-batched-tokens', { min: 1 }),
    maxNumSeqs: optionalInteger(values, 'max-num-seqs', { min: 1 }),
  };
}

const IN_PROCESS: ParallelConfig = { dp: 1, tp: 1, pp: 1 };

/** --threads (all cores when absent) split evenly over `devices`, at least one each. */
export function threadsPerDevice(numThreads: number | undefined, devices: number): number {
  return Math.max(1, Math.floor((numThreads ?? availableParallelism()) / devices));
}

export function buildEngineConfig(
  modelDir: string,
  settings: EngineSettings,
  remote?: RemotePlacement,
): EngineConfig {
  const { seesaw, cluster } = settings;
  const layout = remote?.parallelism ?? seesaw?.prefill ?? cluster?.parallel ?? IN_PROCESS;
  const devices = numDevices(layout);
  const deviceMemoryBytes = remote ? remote.deviceMemoryBytes : (seesaw ?? cluster)?.deviceMemoryBytes;
  const numThreadsPerDevice = remote
    ? remote.numThreadsPerDevice
    : threadsPerDevice(settings.numThreads, devices);
  const config: EngineConfig = {
    model: { dir: resolve(modelDir) },
    parallel: { layout: formatParallelConfig(layout), numDevices: devices },
    cache: {
      blockSize: ENGINE_DEFAULTS.blockSize,
      kvCacheBytes: settings.kvCacheBytes ?? ENGINE_DEFAULTS.kvCacheBytes,
    },
    scheduler: {
      maxNumBatchedTokens: settings.maxNumBatchedTokens ?? ENGINE_DEFAULTS.maxNumBatchedTokens,
      maxNumSeqs: settings.maxNumSeqs ?? ENGINE_DEFAULTS.maxNumSeqs,
      prefillTokenBudget: seesaw?.prefillTokenBudget ?? ENGINE_DEFAULTS.prefillTokenBudget,
      watermark: seesaw?.watermark ?? ENGINE_DEFAULTS.seesawWatermark,
      hostLowMark: seesaw?.hostLowMark ?? ENGINE_DEFAULTS.hostLowMark,
    },
  };
  if (numThreadsPerDevice !== undefined) config.parallel.numThreadsPerDevice = numThreadsPerDevice;
  if (seesaw) {
    config.parallel.decodeLayout = formatParallelConfig(seesaw.decode);
    config.parallel.reshardRoute = seesaw.reshardRoute;
    if (seesaw.hostWeightCache !== undefined) config.parallel.hostWeightCache = seesaw.hostWeightCache;
  }
  if (deviceMemoryBytes !== undefined) config.cache.deviceMemoryBytes = deviceMemoryBytes;
  if (settings.hostKvBytes !== undefined) config.cache.hostKvBytes = settings.hostKvBytes;
  if (settings.preemptionMode !== undefined) config.cache.preemptionMode = settings.preemptionMode;
  if (settings.kvDtype !== undefined) config.cache.kvDtype = settings.kvDtype;
  return config;
}

/** Each device's weights + KV cache budget: the config's, or the whole checkpoint plus its KV cache. */
export function deviceMemoryOf(config: EngineConfig, weightBytes: number): number {
  return config.cache.deviceMemoryBytes ?? weightBytes + config.cache.kvCacheBytes;
}
