import type { ModelConfig } from './model-config.ts';
import type { ReferenceWeights } from './reference-weights.ts';
import { ropeInvFreq } from './rope.ts';

/** y[out] = W[out][in] · x[in] (+ bias). */
function linear(
  w: Float64Array,
  x: Float64Array,
  outFeatures: number,
  bias: Float64Array | null = null,
): Float64Array {
  const inFeatures = x.length;
  const y = new Float64Array(outFeatures);
  for (let o = 0; o < outFeatures; o++) {
    let sum = 0;
    const row = o * inFeatures;
    for (let i = 0; i < inFeatures; i++) sum += w[row + i] * x[i];
    y[o] = bias === null ? sum : sum + bias[o];
  }
  return y;
}

/** x / sqrt(mean(x²) + eps) * weight */
function rmsNorm(x: Float64Array, weight: Float64Array, eps: number): Float64Array {
  let sumSquares = 0;
  for (const v of x) sumSquares += v * v;
  const scale = 1 / Math.sqrt(sumSquares / x.length + eps);
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i] * scale * weight[i];
  return y;
}

/**
 * Rotate-half RoPE in place on numHeads vectors of headDim packed in v: for i < headDim/2,
 * (a, b) = (v[i], v[i + half]) -> (a cos − b sin, b cos + a sin), angle = position · invFreq[i].
 */
function applyRope(
  v: Float64Array,
  numHeads: number,
  headDim: number,
  position: number,
  invFreq: Float64Array,
): void {
  const half = headDim / 2;
  for (let h = 0; h < numHeads; h++) {
    const base = h * headDim;
    for (let i = 0; i < half; i++) {
      const angle = position * invFreq[i];
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      const a = v[base + i];
      const b = v[base + i + half];
      v[base + i] = a * cos - b * sin;
      v[base + i + half] = b * cos + a * sin;
    }
  }
}

function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/**
 * Float64 Llama forward, straight from the Hugging Face definition, one token at a time with a
 * contiguous KV cache (per layer, per position: [numKvHeads*headDim] after RoPE). The oracle
 * for the fast engine: simple rather than fast.
 */
export class ReferenceModel {
  private readonly invFreq: Float64Array;
  /** keys[layer][position], values[layer][position]: [numKvHeads*headDim] */
  private keys: Float64Array[][] = [];
  private values: Float64Array[][] = [];

  constructor(
    readonly config: ModelConfig,
    readonly weights: ReferenceWeights,
  ) {
    if (weights.layers.length !== config.numLayers) {
      throw new Error(`weights have ${weights.layers.length} layers, config says ${config.numLayers}`);
    }
    this.invFreq = ropeInvFreq(config);
    this.reset();
  }

  get numCached(): number {
    return this.keys[0]?.length ?? 0;
  }

  reset(): void {
    this.keys = this.weights.layers.map(() => []);
    this.values = this.weights.layers.map(() => []);
  }

  /** Feeds tokens at positions numCached.., returns logits [tokens.length][vocab]. */
  forward(tokens: number[]): Float64Array[] {
    return tokens.map((token) => this.forwardOne(token));
  }

  private forwardOne(token: number): Float64Array {
    const c = this.config;
    if (!Number.isInteger(token) || token < 0 || token >= c.vocabSize) {
      throw new Error(`token id ${token} outside vocab [0, ${c.vocabSize})`);
    }
    const position = this.numCached;
    let hidden = this.weights.embedTokens.slice(token * c.hiddenSize, (token + 1) * c.hiddenSize);
    for (let l = 0; l < c.numLayers; l++) {
      const attn = this.attention(
        l,
        rmsNorm(hidden, this.weights.layers[l].inputNorm, c.rmsNormEps),
        position,
      );
      hidden = hidden.map((v, i) => v + attn[i]);
      const mlp = this.mlp(l, rmsNorm(hidden, this.weights.layers[l].postAttentionNorm, c.rmsNormEps));
      hidden = hidden.map((v, i) => v + mlp[i]);
    }
    return linear(this.weights.lmHead, rmsNorm(hidden, this.weights.finalNorm, c.rmsNormEps), c.vocabSize);
  }

  private attention(layer: number, x: Float64Array, position: number): Float64Array {
    const c = this.config;
    const w = this.weights.layers[layer];
    const { headDim, numHeads, numKvHeads } = c;
    const q = linear(w.qProj, x, numHeads * headDim, w.qBias);
    const k = linear(w.kProj, x, numKvHeads * headDim, w.kBias);
    const v = linear(w.vProj, x, numKvHeads * headDim, w.vBias);
    applyRope(q, numHeads, headDim, position, this.invFreq);
    applyRope(k, numKvHeads, headDim, position, this.invFreq);
    this.keys[layer].push(k);
    this.values[layer].push(v);
    // Causal: this token sees cached positions 0..position (itself included), nothing later.
    const keys = this.keys[layer];
    const values = this.values[layer];
    const scale = 1 / Math.sqrt(headDim);
    const groupSize = numHeads / numKvHeads;
    const out = new Float64Array(numHeads * headDim);
    for (let h = 0; h < numHeads; h++) {
      const kvBase = Math.floor(h / groupSize) * headDim;
      const scores = new Float64Array(keys.length);
      let maxScore = Number.NEGATIVE_INFINITY;
      for (let t = 0; t < keys.length; t++) {
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += q[h * headDim + d] * keys[t][kvBase + d];
        scores[t] = dot * scale;
        maxScore = Math.max(maxScore, scores[t]);
      }
      let denom = 0;
      for (let t = 0; t < keys.length; t++) {
        scores[t] = Math.exp(scores[t] - maxScore);
        denom += scores[t];
      }
      for (let t = 0; t < keys.length; t++) {
        const p = scores[t] / denom;
        for (let d = 0; d < headDim; d++) out[h * headDim + d] += p * values[t][kvBase + d];
      }
    }
    return linear(w.oProj, out, c.hiddenSize);
  }

  private mlp(layer: number, x: Float64Array): Float64Array {
    const c = this.config;
    const w = this.weights.layers[layer];
    const gate = linear(w.gateProj, x, c.intermediateSize);
    const up = linear(w.upProj, x, c.intermediateSize);
    const act = gate.map((g, i) => silu(g) * up[i]);
    return linear(w.downProj, act, c.hiddenSize);
  }
}
