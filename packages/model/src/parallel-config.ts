import type { ModelConfig } from './model-config.ts';

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

/** The canonical name: letters whose degree is above 1, in D, T, P order; a single device is `D1`. */
export function formatParallelConfig(config: ParallelConfig): string {
  checkDegrees(config);
  const parts = [
    config.dp > 1 ? `D${config.dp}` : '',
    config.tp > 1 ? `T${config.tp}` : '',
    config.pp > 1 ? `P${config.pp}` : '',
  ].join('');
  return parts === '' ? 'D1' : parts;
}

export function numDevices(config: ParallelConfig): number {
  checkDegrees(config);
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

/**
 * Checks a model can be split this way: heads, KV heads and MLP columns divide evenly over TP
 * ranks, each TP rank gets at least one vocabulary row (vocab rows need not divide evenly:
 * earlier ranks take the remainder) and each pipeline stage at least one layer. Throws one
 * error listing every problem.
 */
export function validateForModel(parallel: ParallelConfig, model: ModelConfig): void {
  checkDegrees(parallel);
  const { tp, pp } = parallel;
  const name = formatParallelConfig(parallel);
  const problems: string[] = [];
  if (model.numHeads % tp !== 0) problems.push(`${model.numHeads} attention heads do not divide by TP ${tp}`);
  if (model.numKvHeads % tp !== 0) problems.push(`${model.numKvHeads} KV heads do not divide by TP ${tp}`);
  if (model.intermediateSize % tp !== 0) {
    problems.push(`MLP intermediate size ${model.intermediateSize} does not divide by TP ${tp}`);
  }
  if (model.vocabSize < tp) problems.push(`vocabulary of ${model.vocabSize} is smaller than TP ${tp}`);
  if (pp > model.numLayers) problems.push(`PP ${pp} is more than the model's ${model.numLayers} layers`);
  if (problems.length > 0) {
    throw new ParallelConfigError(`${name} cannot shard this model: ${problems.join('; ')}`);
  }
}

function checkDegrees(config: ParallelConfig): void {
  for (const key of ['dp', 'tp', 'pp'] as const) {
    const value = config[key];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new ParallelConfigError(
        `parallel configuration: ${key} must be a positive integer, got ${value}`,
      );
    }
  }
}
