import { GgufTensors, isGgufPath } from './gguf-tensors.ts';
import { loadConfigJson, type ModelConfig } from './model-config.ts';

export { isGgufPath };

/**
 * The model config at `path`: a Hugging Face directory (config.json) or a llama GGUF file (its
 * metadata). Every command takes either wherever it takes a model.
 */
export function loadModelConfig(path: string): ModelConfig {
  if (!isGgufPath(path)) return loadConfigJson(path);
  const gguf = GgufTensors.open(path);
  try {
    return gguf.config;
  } finally {
    gguf.close();
  }
}
