/**
 * config.json checked against the tensors actually in the checkpoint files, before anything
 * sized by the config is built (the per-layer and embedding dimensions; the other shapes are then
 * bounded by these and listed by Checkpoint.validate): a config claiming 10^9 layers or a 10^9-wide hidden size must
 * fail in microseconds with an error naming the field, not after building per-layer tables (or
 * allocating buffers) until V8 runs out of heap.
 */
import type { ModelConfig } from './model-config.ts';

/** The shapes found in the safetensors headers, by tensor name. */
export type TensorShapes = ReadonlyMap<string, { readonly shape: readonly number[] }>;

const LAYER_NAME = /^model\.layers\.(\d+)\./;

/** Problems found, one line each; empty when the config's dimensions match the files. */
export function configBoundProblems(config: ModelConfig, tensors: TensorShapes): string[] {
  const problems: string[] = [];
  let numLayersInFiles = 0;
  for (const name of tensors.keys()) {
    const match = LAYER_NAME.exec(name);
    if (match) numLayersInFiles = Math.max(numLayersInFiles, Number(match[1]) + 1);
  }
  if (config.numLayers !== numLayersInFiles) {
    problems.push(
      `num_hidden_layers is ${config.numLayers}, but the checkpoint has tensors for ${numLayersInFiles} layers`,
    );
  }
  const embed = tensors.get('model.embed_tokens.weight')?.shape;
  // A missing embedding is reported by Checkpoint.validate with every other missing tensor.
  if (
    embed !== undefined &&
    (embed.length !== 2 || embed[0] !== config.vocabSize || embed[1] !== config.hiddenSize)
  ) {
    problems.push(
      `vocab_size ${config.vocabSize} x hidden_size ${config.hiddenSize} does not match ` +
        `model.embed_tokens.weight of shape ${JSON.stringify(embed)}`,
    );
  }
  return problems;
}
