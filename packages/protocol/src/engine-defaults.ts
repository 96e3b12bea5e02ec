/**
 * Every engine default, defined once: the CLI, the coordinator's engines and clusters, the host
 * agents, the device workers and the planner's simulator all read them from here, so a run, a
 * remote job and a simulation of it start from the same settings.
 */
import type { KvDTypeSetting } from './engine-config.ts';

export interface EngineDefaults {
  readonly blockSize: number;
  readonly kvCacheBytes: number;
  readonly kvDtype: KvDTypeSetting;
  readonly maxNumBatchedTokens: number;
  readonly maxNumSeqs: number;
  readonly prefillTokenBudget: number;
  readonly seesawWatermark: number;
  readonly hostLowMark: number;
}

export const ENGINE_DEFAULTS: EngineDefaults = Object.freeze({
  /** Tokens per KV block (device cache and the host tier's slots alike). */
  blockSize: 16,
  /** Device KV cache on top of the weights when no device memory is given: 512 MiB. */
  kvCacheBytes: 512 * 1024 * 1024,
  /**
   * KV cache element type (--kv-dtype). f32, not auto: it keeps every output equal to what
   * earlier runs, the float64-reference tests and saved benchmarks produced; `--kv-dtype auto`
   * (the weights' 16-bit type) halves the KV bytes at a stated tolerance and is opt-in.
   */
  kvDtype: 'f32',
  /**
   * Token budget of one step, prefill chunks and decodes together. On 2 cores 512, 1024 and 2048
   * measured the same within noise, and a smaller step keeps progress moving.
   */
  maxNumBatchedTokens: 512,
  /** Sequences running at once. */
  maxNumSeqs: 256,
  /** Seesaw: tokens per prefill step (the paper artifact's value). */
  prefillTokenBudget: 4096,
  /** Seesaw: share of device blocks kept free when decode admits a sequence. */
  seesawWatermark: 0.1,
  /** Seesaw: switch back to prefill once host KV use is at most this share and prompts wait. */
  hostLowMark: 0.2,
});
