import type { HostKvTierConfig } from './host-kv-tier.ts';

export interface SeesawSchedulerConfig {
  blockSize: number;
  /** Device blocks of the starting (prefill) layout. */
  numKvBlocks: number;
  /** Device blocks of the decode layout when known up front (requests that cannot fit it are rejected). */
  numDecodeKvBlocks?: number;
  hostKv: HostKvTierConfig;
  /** Prefill token budget per step (default 4096, the artifact's). */
  maxNumBatchedTokens?: number;
  /** Decode batch cap: running sequences, all micro-batches together (default 256). */
  maxNumSeqs?: number;
  /** Prompt + output cap; lowered to the prefill layout's KV capacity when that is smaller. */
  maxModelLen: number;
  eosTokenIds: readonly number[];
  /** Fraction of device blocks kept free when decode admits a parked sequence (default 0.1). */
  watermark?: number;
  /** Decode -> prefill once host slots in use / total <= this and prompts wait (default 0.2). */
  hostLowMark?: number;
  /** Pipeline stages (pp of the layout), default 1; enterPhase may change it per phase. */
  maxInFlight?: number;
  randomSeed?: () => number;
}

export const DEFAULT_SEESAW_PREFILL_TOKEN_BUDGET = 4096;
export const DEFAULT_SEESAW_WATERMARK = 0.1;
export const DEFAULT_SEESAW_HOST_LOW_MARK = 0.2;

export function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

export function fraction(name: string, value: number, isOneAllowed: boolean): number {
  if (!(value >= 0 && (isOneAllowed ? value <= 1 : value < 1)))
    throw new RangeError(`${name} must be in [0, 1${isOneAllowed ? ']' : ')'}, got ${value}`);
  return value;
}
