/**
 * Ordering units of a shard's weights, as the re-shard planner numbers them: 0 = embedding,
 * 1 + layer for a decoder layer's tensors (global layer index), L + 1 = final norm, L + 2 = lm
 * head (L = the model's layer count). A device re-shards one unit at a time in this order, so it
 * never holds much more than its old and new shard side by side for one unit.
 */
import type { ShardSpec, TensorSlice } from '@seesaw/model';

export function embeddingUnit(): number {
  return 0;
}

export function layerUnit(layer: number): number {
  return 1 + layer;
}

export function finalNormUnit(numLayers: number): number {
  return numLayers + 1;
}

export function lmHeadUnit(numLayers: number): number {
  return numLayers + 2;
}

/** Every unit number of a model with `numLayers` layers, ascending. */
export function allUnits(numLayers: number): number[] {
  return Array.from({ length: numLayers + 3 }, (_, unit) => unit);
}

/** The slices of `spec` in `unit` (none when the shard holds nothing of it), in load order. */
export function unitSlices(spec: ShardSpec, numLayers: number, unit: number): TensorSlice[] {
  if (unit === embeddingUnit()) return spec.embedding ? [spec.embedding] : [];
  if (unit === finalNormUnit(numLayers)) return spec.finalNorm ? [spec.finalNorm] : [];
  if (unit === lmHeadUnit(numLayers)) return spec.lmHead ? [spec.lmHead] : [];
  const layer = spec.layerSlices.find((slices) => layerUnit(slices.layer) === unit);
  if (!layer) return [];
  const { inputNorm, q, k, v, qBias, kBias, vBias, o, postAttentionNorm, gate, up, down } = layer;
  const biases = [qBias, kBias, vBias].filter((bias): bias is TensorSlice => bias !== undefined);
  return [inputNorm, q, k, v, ...biases, o, postAttentionNorm, gate, up, down];
}

/** The units `spec` holds something of, ascending. */
export function shardUnits(spec: ShardSpec, numLayers: number): number[] {
  return allUnits(numLayers).filter((unit) => unitSlices(spec, numLayers, unit).length > 0);
}
