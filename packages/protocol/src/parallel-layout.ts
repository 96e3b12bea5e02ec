/**
 * The one layout type of the project and its one grammar: degrees of data, tensor and pipeline
 * parallelism, written `D<dp>T<tp>P<pp>`. Every package (model, coordinator, gpu-actor, planner,
 * cli) and the wire's loadShard use these.
 */

/** Degrees of data, tensor and pipeline parallelism; written `D2T2P2` (a missing letter = 1). */
export interface ParallelConfig {
  dp: number;
  tp: number;
  pp: number;
}

/** Where one device sits in a parallel configuration. */
export interface DeviceRank {
  device: number;
  dpRank: number;
  tpRank: number;
  ppStage: number;
}

export class ParallelConfigError extends Error {
  override name = 'ParallelConfigError';
}

const PATTERN = /^(?:D(\d+))?(?:T(\d+))?(?:P(\d+))?$/;
const MAX_DEGREE = 4096;

function degree(text: string | undefined, letter: string, source: string): number {
  if (text === undefined) return 1;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1 || value > MAX_DEGREE || /^0\d/.test(text)) {
    throw new ParallelConfigError(
      `parallel configuration "${source}": ${letter}${text} must be a whole number in [1, ${MAX_DEGREE}]`,
    );
  }
  return value;
}

/** Parses `D2T2P2`, `T4`, `P2`, `D2T2`... Letters in the order D, T, P, each at most once. */
export function parseParallelConfig(text: string): ParallelConfig {
  const trimmed = text.trim().toUpperCase();
  const match = PATTERN.exec(trimmed);
  if (trimmed === '' || match === null) {
    throw new ParallelConfigError(
      `parallel configuration ${JSON.stringify(text)} is not of the form D<dp>T<tp>P<pp> ` +
        `(letters in that order, missing ones = 1; e.g. T2, P4, D2T2, T2P2)`,
    );
  }
  return {
    dp: degree(match[1], 'D', text),
    tp: degree(match[2], 'T', text),
    pp: degree(match[3], 'P', text),
  };
}

/**
 * The canonical name: letters whose degree is above 1, in D, T, P order; a single device is `D1`.
 * `allLetters` writes every letter (`D1T2P1`), the form loadShard carries on the wire.
 */
export function formatParallelConfig(config: ParallelConfig, options: { allLetters?: boolean } = {}): string {
  checkParallelDegrees(config);
  if (options.allLetters) return `D${config.dp}T${config.tp}P${config.pp}`;
  const parts = [
    config.dp > 1 ? `D${config.dp}` : '',
    config.tp > 1 ? `T${config.tp}` : '',
    config.pp > 1 ? `P${config.pp}` : '',
  ].join('');
  return parts === '' ? 'D1' : parts;
}

export function numDevices(config: ParallelConfig): number {
  checkParallelDegrees(config);
  return config.dp * config.tp * config.pp;
}

/**
 * Every device's ranks. Device index order: dp-major, then pipeline stage, then tp rank:
 *   device = (dpRank * pp + ppStage) * tp + tpRank,
 * so a TP group is tp consecutive devices (the ones that all-reduce every layer sit together)
 * and one replica's pipeline is a consecutive run of pp * tp devices.
 */
export function deviceRanks(config: ParallelConfig): DeviceRank[] {
  const ranks: DeviceRank[] = [];
  for (let dpRank = 0; dpRank < config.dp; dpRank++) {
    for (let ppStage = 0; ppStage < config.pp; ppStage++) {
      for (let tpRank = 0; tpRank < config.tp; tpRank++) {
        ranks.push({ device: ranks.length, dpRank, tpRank, ppStage });
      }
    }
  }
  if (ranks.length !== numDevices(config)) throw new Error('unreachable: rank count');
  return ranks;
}

export function checkParallelDegrees(config: ParallelConfig): void {
  for (const key of ['dp', 'tp', 'pp'] as const) {
    const value = config[key];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new ParallelConfigError(
        `parallel configuration: ${key} must be a positive integer, got ${value}`,
      );
    }
  }
}
