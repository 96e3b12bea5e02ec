import type { ModelConfig } from './model-config.ts';

export interface InitDistribution {
  mean: number;
  std: number;
}

/**
 * How generated checkpoints draw each tensor (uniform with this mean and std). Chosen so the
 * residual stream keeps about unit scale through every layer and greedy decoding is not
 * degenerate (measured: 32 greedy steps of tiny give ~30 distinct tokens, tied or not).
 * - projections: std 1/sqrt(fan_in) (unit-variance outputs from RMS-normalised inputs);
 * - o_proj and down_proj additionally / sqrt(2 * layers), since 2 * layers branches add to the residual;
 * - norm weights: mean 1, std 0.1 (not all ones, so a forward pass that skips them is caught);
 * - q/k/v biases: std 0.1;
 * - embeddings: std 1, so the current token stays strong in the residual stream (with a weak
 *   token signal, greedy decoding of a random model falls into a fixed point).
 * Tied embeddings: lm_head is then the embedding matrix, and a residual dominated by e_x makes
 * the logits a symmetric form e_xᵀ diag(w) e_y, so greedy decoding falls into x -> y -> x
 * cycles. Tied checkpoints therefore use embeddings of std 1/sqrt(hidden) (unit-scale logits)
 * and an unscaled down_proj, so the token-specific MLP outputs dominate the residual instead.
 */
export function initDistribution(
  name: string,
  shape: readonly number[],
  config: ModelConfig,
): InitDistribution {
  const fanIn = shape[shape.length - 1];
  const tied = config.tieWordEmbeddings;
  const residualScale = 1 / Math.sqrt(2 * config.numLayers);
  if (name === 'model.embed_tokens.weight')
    return { mean: 0, std: tied ? 1 / Math.sqrt(config.hiddenSize) : 1 };
  if (name.endsWith('layernorm.weight') || name === 'model.norm.weight') return { mean: 1, std: 0.1 };
  if (name.endsWith('.bias')) return { mean: 0, std: 0.1 };
  if (name.endsWith('down_proj.weight'))
    return { mean: 0, std: (tied ? 1 : residualScale) / Math.sqrt(fanIn) };
  if (name.endsWith('o_proj.weight')) return { mean: 0, std: residualScale / Math.sqrt(fanIn) };
  if (shape.length === 2) return { mean: 0, std: 1 / Math.sqrt(fanIn) };
  throw new Error(`no initialisation rule for tensor "${name}"`);
}
