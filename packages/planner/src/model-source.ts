import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadModelConfig, type ModelConfig } from '@seesaw/model';
import { isModelPresetName, MODEL_PRESET_NAMES, modelPreset } from './model-presets.ts';

/** Bytes per weight element from a config's torch_dtype (16-bit unless it says float32). */
export function dtypeBytesOf(config: ModelConfig): number {
  return config.torchDtype === 'float32' ? 4 : 2;
}

/** A preset name (llama-2-70b, ...) or a model directory with a config.json. */
export function resolveModel(spec: string): ModelConfig {
  if (isModelPresetName(spec)) return modelPreset(spec);
  if (existsSync(join(spec, 'config.json'))) return loadModelConfig(spec);
  throw new RangeError(
    `model '${spec}' is neither a preset (${MODEL_PRESET_NAMES.join(', ')}) nor a directory with config.json`,
  );
}
