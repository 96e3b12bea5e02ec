import {
  type ComputeOp,
  type ElementwiseOp,
  LINEAR_OPS,
  type LinearOp,
  type OpModelShape,
} from './calibration-tables.ts';
import { regimeFor, type SizeRegimes } from './size-regimes.ts';

/**
 * The cost model of one layer op on one GPU, the form the planner's step cost uses: a linear op
 * is a fixed launch cost plus max(FLOPs at the achieved matmul rate, bytes at the achieved
 * streaming rate) (a roofline); an elementwise op is a launch cost plus its bytes at the achieved
 * elementwise rate. Each op is its own kernel with its own efficiency (a fused RMSNorm reaches a
 * different share of the bandwidth than a residual add; the down projection's long reduction
 * runs at a different matmul rate than the up projection), so every op has its own rates, and
 * two sets of them by working-set size (L2-resident or not; see size-regimes.ts). The rates are
 * what `fitGpuOps` fits to measured tables.
 */
export interface GpuOpFit {
  /**
   * The planner's form: one roofline for a layer's four linear ops together (4 launches +
   * max(their FLOPs / rate, their bytes / rate)), fitted to the sum of their measured times.
   */
  layer: LinearRates;
  linear: Record<LinearOp, SizeRegimes<LinearRates>>;
  elementwise: Record<ElementwiseOp, SizeRegimes<LinkRate>>;
}

export interface LinearRates {
  /** Achieved fp16 matmul rate, FLOP/s. */
  matmulFlopsPerSecond: number;
  /** Achieved rate of streaming the weights and activations, bytes/s. */
  bytesPerSecond: number;
  /** Fixed cost (launch, tail of the last wave), seconds. */
  launchSeconds: number;
}

export interface LinkRate {
  bytesPerSecond: number;
  launchSeconds: number;
}

export interface OpWork {
  flops: number;
  bytes: number;
}

const HALF = 2;

function linearWork(rows: number, inputs: number, outputs: number): OpWork {
  const params = inputs * outputs;
  return { flops: 2 * rows * params, bytes: HALF * (params + rows * (inputs + outputs)) };
}

/** FLOPs and bytes of one op of one layer on one of `tp` devices, for `numTokens` tokens, fp16. */
export function opWork(op: ComputeOp, shape: OpModelShape, numTokens: number, tp: number): OpWork {
  const h = shape.hiddenSize;
  const d = h / shape.numHeads;
  const qkv = ((shape.numHeads + 2 * shape.numKvHeads) * d) / tp;
  const expanded = shape.intermediateSize / tp;
  const n = numTokens;
  switch (op) {
    case 'attn_pre_proj':
      return linearWork(n, h, qkv);
    case 'attn_post_proj':
      return linearWork(n, h / tp, h);
    case 'mlp_up_proj':
      return linearWork(n, h, (shape.gatedMlp ? 2 : 1) * expanded);
    case 'mlp_down_proj':
      return linearWork(n, expanded, h);
    case 'mlp_act':
      // Reads gate and up (or the one input), writes the product.
      return { flops: 0, bytes: HALF * n * expanded * (shape.gatedMlp ? 3 : 2) };
    case 'input_layernorm':
    case 'post_attention_layernorm':
      return { flops: 0, bytes: HALF * n * h * 2 };
    case 'attn_rope':
      // Rotates q and k in place: read and write both.
      return { flops: 0, bytes: (HALF * n * ((shape.numHeads + shape.numKvHeads) * d * 2)) / tp };
    case 'add':
      return { flops: 0, bytes: HALF * n * h * 3 };
    case 'emb':
      // Gathers one embedding row per token and writes it.
      return { flops: 0, bytes: HALF * n * h * 2 };
  }
}

export function isLinearOp(op: ComputeOp): op is LinearOp {
  return (LINEAR_OPS as readonly string[]).includes(op);
}

export function predictLinearSeconds(rates: LinearRates, work: OpWork): number {
  return (
    rates.launchSeconds + Math.max(work.flops / rates.matmulFlopsPerSecond, work.bytes / rates.bytesPerSecond)
  );
}

/** The summed work of a layer's linear ops on one of `tp` devices. */
export function layerLinearWork(shape: OpModelShape, numTokens: number, tp: number): OpWork {
  let flops = 0;
  let bytes = 0;
  for (const op of LINEAR_OPS) {
    const work = opWork(op, shape, numTokens, tp);
    flops += work.flops;
    bytes += work.bytes;
  }
  return { flops, bytes };
}

/** The planner's layer roofline: one launch per linear op, then the slower of FLOPs and bytes. */
export function predictLayerLinearSeconds(rates: LinearRates, work: OpWork): number {
  return (
    LINEAR_OPS.length * rates.launchSeconds +
    Math.max(work.flops / rates.matmulFlopsPerSecond, work.bytes / rates.bytesPerSecond)
  );
}

export function predictElementwiseSeconds(rate: LinkRate, work: OpWork): number {
  return rate.launchSeconds + work.bytes / rate.bytesPerSecond;
}

export function predictOpSeconds(fit: GpuOpFit, op: ComputeOp, work: OpWork): number {
  if (isLinearOp(op)) return predictLinearSeconds(regimeFor(fit.linear[op], work.bytes), work);
  return predictElementwiseSeconds(regimeFor(fit.elementwise[op], work.bytes), work);
}
