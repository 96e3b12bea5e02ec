/**
 * The flags that run the engine the Seesaw way: prefill under one parallel layout, decode under
 * another, re-sharding the weights between them (--prefill X --decode Y), with the scheduler's
 * thresholds (--prefill-token-budget, --watermark, --host-low-mark) and the re-shard route.
 * Prefill parks every sequence's KV in the host tier, so a Seesaw run always has one: without
 * --host-kv-memory it gets 25% of the free RAM, at most 4 GiB.
 */
import { freemem } from 'node:os';
import {
  formatParallelConfig,
  numDevices,
  type ParallelConfig,
  parseParallelConfig,
  type ReshardRoute,
} from '@seesaw/model';
import { ENGINE_DEFAULTS } from '@seesaw/protocol';
import {
  type FlagValues,
  optionalByteSize,
  optionalChoice,
  optionalInteger,
  optionalString,
  UsageError,
} from './args.ts';

export const RESHARD_ROUTES: readonly ReshardRoute[] = ['auto', 'p2p', 'host'];

/** The paper artifact's defaults, defined in ENGINE_DEFAULTS. */
export const DEFAULT_PREFILL_TOKEN_BUDGET = ENGINE_DEFAULTS.prefillTokenBudget;
export const DEFAULT_SEESAW_WATERMARK = ENGINE_DEFAULTS.seesawWatermark;
export const DEFAULT_HOST_LOW_MARK = ENGINE_DEFAULTS.hostLowMark;
/** Host KV tier when none is given: this share of the free RAM, at most MAX. */
export const DEFAULT_HOST_KV_FREE_RAM_SHARE = 0.25;
export const MAX_DEFAULT_HOST_KV_BYTES = 4 * 1024 ** 3;

/** The Seesaw scheduler's thresholds and the re-shard route (bench --compare gives them to every Seesaw run). */
export interface SeesawTuning {
  prefillTokenBudget: number;
  watermark: number;
  hostLowMark: number;
  reshardRoute: ReshardRoute;
  /**
   * Each device keeps its shard under both layouts in host memory, so host-route switches are
   * memory copies. Absent: on when it fits (chooseHostWeightCache).
   */
  hostWeightCache?: 'on' | 'off';
}

export interface SeesawSettings extends SeesawTuning {
  prefill: ParallelConfig;
  decode: ParallelConfig;
  /** dp * tp * pp of either layout (the same by construction). */
  numDevices: number;
  /** Each device's weights + KV cache budget; absent: the whole checkpoint plus 512 MiB of KV cache. */
  deviceMemoryBytes?: number;
}

/** Both layouts must keep DP and the number of devices of a replica; message says which does not. */
export function checkSeesawPair(prefill: ParallelConfig, decode: ParallelConfig): string | null {
  const names = `${formatParallelConfig(prefill)} and ${formatParallelConfig(decode)}`;
  if (prefill.dp !== decode.dp)
    return `${names} differ in DP (${prefill.dp} vs ${decode.dp}); DP must stay the same`;
  if (prefill.tp * prefill.pp !== decode.tp * decode.pp) {
    return (
      `${names} use ${prefill.tp * prefill.pp} and ${decode.tp * decode.pp} devices per replica; ` +
      'both layouts must use the same devices (tp * pp equal)'
    );
  }
  return null;
}

function parseLayout(values: FlagValues, name: 'prefill' | 'decode'): ParallelConfig | undefined {
  const text = optionalString(values, name);
  if (text === undefined) return undefined;
  if (text === 'auto') {
    throw new UsageError(
      `--${name} auto is for bench: the pair is chosen for its workload with --profile FILE`,
    );
  }
  try {
    return parseParallelConfig(text);
  } catch (error) {
    throw new UsageError(`--${name}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** A decimal fraction flag in [0, 1], or [0, 1) when one is not allowed (a watermark of all blocks admits nothing). */
function optionalFraction(values: FlagValues, name: string, isOneAllowed: boolean): number | undefined {
  const text = optionalString(values, name);
  if (text === undefined) return undefined;
  const value = /^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= 0 && (isOneAllowed ? value <= 1 : value < 1))) {
    const range = isOneAllowed ? 'from 0 to 1' : 'from 0 up to (not including) 1';
    throw new UsageError(`--${name} must be a number ${range}, got '${text}'`);
  }
  return value;
}

export const SEESAW_TUNING_FLAGS = [
  'prefill-token-budget',
  'watermark',
  'host-low-mark',
  'reshard-route',
  'host-weight-cache',
] as const;

/** The tuning flags with the paper artifact's defaults. */
export function readSeesawTuning(values: FlagValues): SeesawTuning {
  return {
    prefillTokenBudget:
      optionalInteger(values, 'prefill-token-budget', { min: 1 }) ?? DEFAULT_PREFILL_TOKEN_BUDGET,
    watermark: optionalFraction(values, 'watermark', false) ?? DEFAULT_SEESAW_WATERMARK,
    hostLowMark: optionalFraction(values, 'host-low-mark', true) ?? DEFAULT_HOST_LOW_MARK,
    reshardRoute: optionalChoice(values, 'reshard-route', RESHARD_ROUTES) ?? 'auto',
    hostWeightCache: optionalChoice(values, 'host-weight-cache', ['on', 'off'] as const),
  };
}

/**
 * Absent without --prefill/--decode (then none of the Seesaw-only flags may be given). The
 * static engine's knobs that the Seesaw scheduler replaces are usage errors next to --prefill.
 */
export function readSeesawSettings(values: FlagValues): SeesawSettings | undefined {
  const prefill = parseLayout(values, 'prefill');
  const decode = parseLayout(values, 'decode');
  if (prefill === undefined && decode === undefined) {
    const stray = SEESAW_TUNING_FLAGS.find((name) => values[name] !== undefined);
    if (stray !== undefined) throw new UsageError(`--${stray} needs --prefill X --decode Y`);
    return undefined;
  }
  if (prefill === undefined) throw new UsageError('--decode needs --prefill (e.g. --prefill P2 --decode T2)');
  if (decode === undefined) throw new UsageError('--prefill needs --decode (e.g. --prefill P2 --decode T2)');
  if (values.config !== undefined) {
    throw new UsageError(
      '--prefill/--decode replace --config: give --config X for a static run, or --prefill X --decode Y',
    );
  }
  const problem = checkSeesawPair(prefill, decode);
  if (problem !== null) throw new UsageError(`--prefill/--decode: ${problem}`);
  const needed = numDevices(prefill);
  const numDeviceFlag = optionalInteger(values, 'devices', { min: 1, max: 4096 });
  if (numDeviceFlag !== undefined && numDeviceFlag !== needed) {
    throw new UsageError(
      `--devices ${numDeviceFlag} does not match --prefill ${formatParallelConfig(prefill)}, which needs ${needed} devices`,
    );
  }
  const replaced: Array<[string, string]> = [
    ['kv-cache-memory', 'each device gets --device-memory minus its weights'],
    ['max-num-batched-tokens', 'use --prefill-token-budget'],
    ['preemption', 'the Seesaw scheduler swaps to the host tier, or recomputes when it is full'],
  ];
  for (const [name, why] of replaced) {
    if (values[name] !== undefined)
      throw new UsageError(`--${name} does not apply with --prefill/--decode: ${why}`);
  }
  const settings: SeesawSettings = {
    prefill,
    decode,
    numDevices: needed,
    ...readSeesawTuning(values),
  };
  const deviceMemoryBytes = optionalByteSize(values, 'device-memory');
  if (deviceMemoryBytes !== undefined) settings.deviceMemoryBytes = deviceMemoryBytes;
  return settings;
}

/** --host-kv-memory for a Seesaw run when none is given: 25% of the free RAM, at most 4 GiB. */
export function defaultSeesawHostKvBytes(freeBytes: number = freemem()): number {
  return Math.max(
    1,
    Math.floor(Math.min(freeBytes * DEFAULT_HOST_KV_FREE_RAM_SHARE, MAX_DEFAULT_HOST_KV_BYTES)),
  );
}
