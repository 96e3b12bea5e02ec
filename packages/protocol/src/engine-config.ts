/**
 * One engine's whole configuration: which model, how it is laid out over devices, how its KV
 * cache is sized and how its scheduler batches. The CLI builds it once from the flags (every
 * default from ENGINE_DEFAULTS); a local session and a job on the coordinator (openJob carries it
 * unchanged) run with exactly this object, so a job runs as its client configured it.
 */
import { type Check, finite, int, object, oneOf, str } from './check.ts';

export type PreemptionModeName = 'auto' | 'swap' | 'recompute';
/** Element type of the KV cache, on the devices and in the host tier alike. */
export type KvCacheDType = 'f32' | 'bf16' | 'f16';
/** --kv-dtype: a KV cache dtype, or auto (the checkpoint's 16-bit type, see resolveKvDtype in @seesaw/model). */
export type KvDTypeSetting = 'auto' | KvCacheDType;
export const KV_DTYPE_SETTINGS: readonly KvDTypeSetting[] = ['auto', 'bf16', 'f16', 'f32'];
export type ReshardRouteName = 'auto' | 'p2p' | 'host';

export interface EngineModelConfig {
  /** Checkpoint directory (or FILE.gguf) as the devices that load it see it. */
  dir: string;
}

export interface EngineParallelConfig {
  /** The layout, `D<dp>T<tp>P<pp>`; a Seesaw engine's prefill layout. */
  layout: string;
  /** A Seesaw engine's decode layout (same devices); absent: one static layout. */
  decodeLayout?: string;
  /** Devices of the layout: dp * tp * pp. */
  numDevices: number;
  /** Kernel threads of each device; absent only for a remote job (each host: its cores over its devices). */
  numThreadsPerDevice?: number;
  /** Seesaw: where re-sharded weights come from. */
  reshardRoute?: ReshardRouteName;
  /** Seesaw: each device's shard under both layouts kept in host memory; absent: 'on'. */
  hostWeightCache?: 'on' | 'off';
}

export interface EngineCacheConfig {
  /** Tokens per KV block. */
  blockSize: number;
  /** Device KV cache on top of the weights (an in-process device; a cluster's default per device). */
  kvCacheBytes: number;
  /** Each device's weights + KV cache budget; absent: the whole checkpoint plus kvCacheBytes. */
  deviceMemoryBytes?: number;
  /** Host KV tier (a remote job: on every host); absent: none. */
  hostKvBytes?: number;
  /** How to preempt; absent: 'auto' with a host tier, else 'recompute'. */
  preemptionMode?: PreemptionModeName;
  /** KV cache element type on the devices and the host tier; absent: auto. */
  kvDtype?: KvDTypeSetting;
}

export interface EngineSchedulerConfig {
  /** Token budget of one step (prefill chunks and decodes together). */
  maxNumBatchedTokens: number;
  maxNumSeqs: number;
  /** Seesaw: tokens per prefill step. */
  prefillTokenBudget: number;
  /** Seesaw: share of device blocks kept free when decode admits. */
  watermark: number;
  /** Seesaw: host KV share at or below which prefill resumes. */
  hostLowMark: number;
}

export interface EngineConfig {
  model: EngineModelConfig;
  parallel: EngineParallelConfig;
  cache: EngineCacheConfig;
  scheduler: EngineSchedulerConfig;
}

const positive = int(1, Number.MAX_SAFE_INTEGER);
const layout = str(64, /^(?:D\d+)?(?:T\d+)?(?:P\d+)?$/);

/** Validation of an EngineConfig received over the wire (openJob). */
export const engineConfigCheck: Check = object({
  model: object({ dir: str(4096) }),
  parallel: object(
    { layout, numDevices: int(1, 4096) },
    {
      decodeLayout: layout,
      numThreadsPerDevice: int(1, 1024),
      reshardRoute: oneOf('auto', 'p2p', 'host'),
      hostWeightCache: oneOf('on', 'off'),
    },
  ),
  cache: object(
    { blockSize: int(1, 1 << 16), kvCacheBytes: positive },
    {
      deviceMemoryBytes: positive,
      hostKvBytes: positive,
      preemptionMode: oneOf('auto', 'swap', 'recompute'),
      kvDtype: oneOf(...KV_DTYPE_SETTINGS),
    },
  ),
  scheduler: object({
    maxNumBatchedTokens: positive,
    maxNumSeqs: positive,
    prefillTokenBudget: positive,
    watermark: finite(0, 1),
    hostLowMark: finite(0, 1),
  }),
});
