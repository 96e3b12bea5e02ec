import {
  checkParallelDegrees,
  formatParallelConfig,
  type ParallelConfig,
  ParallelConfigError,
} from '@seesaw/protocol';
import type { ModelConfig } from './model-config.ts';

/**
 * Checks a model can be split this way: heads, KV heads and MLP columns divide evenly over TP
 * ranks, each TP rank gets at least one vocabulary row (vocab rows need not divide evenly:
 * earlier ranks take the remainder) and each pipeline stage at least one layer. Throws one
 * error listing every problem.
 */
export function validateForModel(parallel: ParallelConfig, model: ModelConfig): void {
  checkParallelDegrees(parallel);
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
