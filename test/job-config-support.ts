/**
 * A job's EngineConfig from the few fields a test cares about; everything else from
 * ENGINE_DEFAULTS, as the CLI's buildEngineConfig fills it.
 */
import { parseParallelConfig } from '@seesaw/model';
import {
  ENGINE_DEFAULTS,
  type EngineConfig,
  type KvDTypeSetting,
  type PreemptionModeName,
} from '@seesaw/protocol';

export interface JobConfigFields {
  modelDir: string;
  parallelism: string;
  numThreadsPerDevice?: number;
  deviceMemoryBytes?: number;
  maxNumBatchedTokens?: number;
  maxNumSeqs?: number;
  hostKvBytes?: number;
  preemptionMode?: PreemptionModeName;
  kvDtype?: KvDTypeSetting;
}

export function jobConfig(fields: JobConfigFields): EngineConfig {
  const { dp, tp, pp } = parseParallelConfig(fields.parallelism);
  const config: EngineConfig = {
    model: { dir: fields.modelDir },
    parallel: { layout: fields.parallelism, numDevices: dp * tp * pp },
    cache: { blockSize: ENGINE_DEFAULTS.blockSize, kvCacheBytes: ENGINE_DEFAULTS.kvCacheBytes },
    scheduler: {
      maxNumBatchedTokens: fields.maxNumBatchedTokens ?? ENGINE_DEFAULTS.maxNumBatchedTokens,
      maxNumSeqs: fields.maxNumSeqs ?? ENGINE_DEFAULTS.maxNumSeqs,
      prefillTokenBudget: ENGINE_DEFAULTS.prefillTokenBudget,
      watermark: ENGINE_DEFAULTS.seesawWatermark,
      hostLowMark: ENGINE_DEFAULTS.hostLowMark,
    },
  };
  if (fields.numThreadsPerDevice !== undefined)
    config.parallel.numThreadsPerDevice = fields.numThreadsPerDevice;
  if (fields.deviceMemoryBytes !== undefined) config.cache.deviceMemoryBytes = fields.deviceMemoryBytes;
  if (fields.hostKvBytes !== undefined) config.cache.hostKvBytes = fields.hostKvBytes;
  if (fields.preemptionMode !== undefined) config.cache.preemptionMode = fields.preemptionMode;
  if (fields.kvDtype !== undefined) config.cache.kvDtype = fields.kvDtype;
  return config;
}
