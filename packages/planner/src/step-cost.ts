import type { StepBatch } from '@seesaw/protocol';
import { cpuLayerComputeSeconds, matmulSeconds } from './cpu-kernel-costs.ts';
import { type DeviceProfile, type LinkProfile, linkBytesPerSecond } from './hardware.ts';
import type { ModelCosts } from './model-costs.ts';
import type { ReplicaLayout, StageLayout } from './replica-layout.ts';

/** What a step's cost depends on, summed over its sequences. */
export interface BatchShape {
  /** Tokens computed (prompt chunks + decode tokens). */
  numTokens: number;
  /** Sequences that sample a token (rows through the LM head). */
  numSampled: number;
  /** Query-key pairs of causal attention: sum over sequences of n * (start + (n + 1) / 2). */
  attentionPairs: number;
  /** KV positions read: sum over sequences of start + n. */
  contextTokens: number;
  /** The part of attentionPairs from sequences with one new token (decode); absent: 0. */
  decodeAttentionPairs?: number;
}

export function batchShapeOf(batch: StepBatch): BatchShape {
  let numTokens = 0;
  let numSampled = 0;
  let attentionPairs = 0;
  let contextTokens = 0;
  let decodeAttentionPairs = 0;
  for (const seq of batch.seqs) {
    const n = seq.tokenIds.length;
    numTokens += n;
    if (seq.isSampled) numSampled++;
    attentionPairs += n * (seq.startPos + (n + 1) / 2);
    contextTokens += seq.startPos + n;
    if (n === 1) decodeAttentionPairs += seq.startPos + 1;
  }
  return { numTokens, numSampled, attentionPairs, contextTokens, decodeAttentionPairs };
}

/** Ring all-reduce of `bytes` over n devices: 2(n-1)/n of the data crosses each link, plus a fixed cost. */
export function allReduceSeconds(bytes: number, n: number, link: LinkProfile): number {
  if (n <= 1) return 0;
  return link.latencySeconds + ((2 * (n - 1)) / n) * (bytes / linkBytesPerSecond(link, bytes));
}

export function transferSeconds(bytes: number, link: LinkProfile): number {
  if (bytes <= 0) return 0;
  return link.latencySeconds + bytes / linkBytesPerSecond(link, bytes);
}

/**
 * The paper's per-layer model on one device of a TP group of `tp`:
 *   max(weights, linear) + max(KV, attention) + 2 all-reduces of the activations.
 * Weights and linear FLOPs are the layer's 1/tp; attention covers the device's heads.
 */
export function layerSeconds(
  costs: ModelCosts,
  device: DeviceProfile,
  tp: number,
  link: LinkProfile,
  shape: BatchShape,
): number {
  const { config, dtypeBytes } = costs;
  const allReduce = 2 * allReduceSeconds(shape.numTokens * config.hiddenSize * costs.computeBytes, tp, link);
  if (device.cpuKernels) {
    const decodePairs = shape.decodeAttentionPairs ?? 0;
    const compute = cpuLayerComputeSeconds(
      device.cpuKernels,
      costs,
      tp,
      shape.numTokens,
      decodePairs,
      shape.attentionPairs - decodePairs,
    );
    return compute + allReduce;
  }
  const memoryRate = device.memoryBytesPerSecond * device.memoryEfficiency;
  const weights = (costs.layerParams * dtypeBytes) / tp / memoryRate;
  const linear =
    (2 * shape.numTokens * costs.layerParams) / tp / (device.matmulFlopsPerSecond * device.matmulEfficiency);
  const d = config.headDim;
  // New q/k/v rows written and read (activations), plus every cached K/V position read once.
  const kvBytes =
    shape.numTokens * (config.numHeads + 2 * config.numKvHeads) * d * costs.computeBytes +
    shape.contextTokens * 2 * config.numKvHeads * d * costs.kvBytesPerElement;
  const kv = kvBytes / tp / memoryRate;
  // QK^T and PV: 2 FLOPs per multiply-add each, per head and head dim.
  const attentionFlops = (4 * config.numHeads * d * shape.attentionPairs) / tp;
  const attention = attentionFlops / (device.matmulFlopsPerSecond * device.attentionEfficiency);
  return (device.layerLaunchSeconds ?? 0) + Math.max(weights, linear) + Math.max(kv, attention) + allReduce;
}

/** LM head on the last stage: vocab rows split over TP, logits gathered. */
function headSeconds(
  costs: ModelCosts,
  device: DeviceProfile,
  tp: number,
  link: LinkProfile,
  shape: BatchShape,
): number {
  if (shape.numSampled === 0) return 0;
  const { vocabSize, hiddenSize } = costs.config;
  const gather = tp > 1 ? allReduceSeconds((shape.numSampled * vocabSize * 4) / 2, tp, link) : 0;
  const sampling =
    shape.numSampled *
    vocabSize *
    (device.cpuKernels?.sampleSecondsPerLogit ?? device.sampleSecondsPerLogit ?? 0);
  if (device.cpuKernels) {
    const matmul = matmulSeconds(device.cpuKernels, shape.numSampled, (vocabSize * hiddenSize) / tp);
    return matmul + gather + sampling;
  }
  const weights =
    (vocabSize * hiddenSize * costs.dtypeBytes) /
    tp /
    (device.memoryBytesPerSecond * device.memoryEfficiency);
  const flops = (2 * shape.numSampled * vocabSize * hiddenSize) / tp;
  const compute = flops / (device.matmulFlopsPerSecond * device.matmulEfficiency);
  return Math.max(weights, compute) + gather + sampling;
}

/** Seconds one stage spends on a step: its layers, the head if last, sending activations on. */
export function stageSeconds(
  costs: ModelCosts,
  device: DeviceProfile,
  tp: number,
  stage: StageLayout,
  shape: BatchShape,
): number {
  let seconds = stage.numLayers * layerSeconds(costs, device, tp, stage.allReduceLink, shape);
  if (stage.isLast) seconds += headSeconds(costs, device, tp, stage.allReduceLink, shape);
  if (stage.nextStageLink) {
    seconds += transferSeconds(
      shape.numTokens * costs.config.hiddenSize * costs.computeBytes,
      stage.nextStageLink,
    );
  }
  if (stage.isFirst) seconds += device.stepOverheadSeconds;
  return seconds;
}

/** Per-stage compute seconds of one step on a replica. */
export function stepStageSeconds(
  costs: ModelCosts,
  device: DeviceProfile,
  layout: ReplicaLayout,
  shape: BatchShape,
): number[] {
  const together = layout.stages.map((stage) =>
    stageSeconds(costs, device, layout.parallel.tp, stage, shape),
  );
  const alone = device.cpuKernels?.alone;
  if (alone === undefined || together.length < 2) return together;
  const aloneDevice: DeviceProfile = { ...device, cpuKernels: alone };
  const solo = layout.stages.map((stage) =>
    stageSeconds(costs, aloneDevice, layout.parallel.tp, stage, shape),
  );
  return sharedCoreStageSeconds(together, solo);
}

/**
 * Pipeline stages on CPU cores that slow each other while both are busy (`seesaw profile`
 * measures the kernels with every worker busy, `together`, and with one, `solo`). In a full
 * pipeline every stage starts a step's share together; all but the longest finish at their
 * `together` time, and the longest then runs on alone: it did together[other]/together[it]
 * of its work in company and does the rest at the solo rate.
 */
export function sharedCoreStageSeconds(together: readonly number[], solo: readonly number[]): number[] {
  let longest = 0;
  for (let s = 1; s < together.length; s++) if (together[s] > together[longest]) longest = s;
  const company = Math.max(0, ...together.filter((_, s) => s !== longest));
  return together.map((seconds, s) =>
    s !== longest || seconds <= 0 ? seconds : company + solo[s] * (1 - company / seconds),
  );
}
