import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from './checkpoint.ts';
import { generateCheckpoint } from './generate-checkpoint.ts';
import { type ModelConfig, parseModelConfig } from './model-config.ts';
import { Xoshiro128 } from './prng.ts';
import { ReferenceModel } from './reference-forward.ts';
import { loadReferenceWeights, type ReferenceWeights } from './reference-weights.ts';

function maxRelativeError(got: Float64Array, want: Float64Array): number {
  let maxAbsWant = 0;
  let maxDiff = 0;
  for (let i = 0; i < want.length; i++) {
    maxAbsWant = Math.max(maxAbsWant, Math.abs(want[i]));
    maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
  }
  return maxDiff / maxAbsWant;
}

describe('ReferenceModel on a hand-checked 1-layer, 1-head, hidden-4 model', () => {
  // hidden 4 = head_dim 4, one head, one KV head, MLP 2, vocab 3, theta 10000 -> invFreq [1, 0.01].
  // eps 0 (a valid config needs eps > 0, so it is set after parsing) keeps the hand formulas exact.
  const config: ModelConfig = {
    ...parseModelConfig(
      {
        architectures: ['LlamaForCausalLM'],
        hidden_size: 4,
        intermediate_size: 2,
        num_hidden_layers: 1,
        num_attention_heads: 1,
        num_key_value_heads: 1,
        vocab_size: 3,
        rope_theta: 10000,
      },
      'hand',
    ),
    rmsNormEps: 0,
  };
  const f = (...v: number[]) => Float64Array.from(v);
  const identity4 = f(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1);
  const weights: ReferenceWeights = {
    embedTokens: f(1, 1, 1, 1, 2, 0, 0, 0, 0.5, -2, 3, -1),
    layers: [
      {
        inputNorm: f(1, 1, 1, 1),
        qProj: identity4,
        kProj: identity4,
        vProj: f(1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1),
        qBias: null,
        kBias: null,
        vBias: null,
        oProj: identity4,
        postAttentionNorm: f(1, 1, 1, 1),
        gateProj: f(1, 0, 0, 0, 0, 1, 0, 0),
        upProj: f(1, 1, 0, 0, 0, 0, 0, 1),
        downProj: f(1, 0, 0, 1, 0, 0, 0, 0),
      },
    ],
    finalNorm: f(1, 1, 1, 1),
    lmHead: f(1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 1),
  };

  const silu = (x: number) => x / (1 + Math.exp(-x));
  const rms = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
  const norm = (v: number[]) => v.map((x) => x / rms(v));
  /** MLP of this model: gate = (x0, x1), up = (x0 + x1, x3), down puts a0 in dim 0 and a1 in dim 1. */
  const mlp = (x: number[]) => [silu(x[0]) * (x[0] + x[1]), silu(x[1]) * x[3], 0, 0];
  /** Logits: (h0, h1, h0+h1+h2+h3) of the normalised final hidden state. */
  const logitsOf = (h: number[]) => {
    const n = norm(h);
    return [n[0], n[1], n[0] + n[1] + n[2] + n[3]];
  };

  it('token 0 at position 0: attention returns V of itself', () => {
    // e = (1,1,1,1): rms 1, so x = e; V = (1, 2, 0, 1); no rotation at position 0.
    const h1 = [1 + 1, 1 + 2, 1 + 0, 1 + 1];
    const h2 = h1.map((v, i) => v + mlp(norm(h1))[i]);
    const [logits] = new ReferenceModel(config, weights).forward([0]);
    expect(maxRelativeError(logits, f(...logitsOf(h2)))).toBeLessThan(1e-14);
  });

  it('token 2 after token 0: rotated scores, causal softmax over both positions', () => {
    // Position 1 token 2: e = (0.5, -2, 3, -1), x = e / rms(e).
    const e = [0.5, -2, 3, -1];
    const x = norm(e);
    // RoPE at position 1, rotate-half pairs (0,2) angle 1 and (1,3) angle 0.01.
    const rot = (v: number[], p: number) => {
      const [c0, s0, c1, s1] = [Math.cos(p), Math.sin(p), Math.cos(0.01 * p), Math.sin(0.01 * p)];
      return [v[0] * c0 - v[2] * s0, v[1] * c1 - v[3] * s1, v[2] * c0 + v[0] * s0, v[3] * c1 + v[1] * s1];
    };
    const q = rot(x, 1);
    const k0 = [1, 1, 1, 1]; // token 0 at position 0 (unrotated), q/k projections are identity
    const k1 = rot(x, 1);
    const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i], 0);
    const s0 = dot(q, k0) / 2; // 1/sqrt(head_dim 4)
    const s1 = dot(q, k1) / 2;
    const p0 = Math.exp(s0) / (Math.exp(s0) + Math.exp(s1));
    const v0 = [1, 2, 0, 1];
    const v1 = [x[0], 2 * x[1], 0, x[3]];
    const attn = v0.map((v, i) => p0 * v + (1 - p0) * v1[i]);
    const h1 = e.map((v, i) => v + attn[i]);
    const h2 = h1.map((v, i) => v + mlp(norm(h1))[i]);
    const model = new ReferenceModel(config, weights);
    const logits = model.forward([0, 2]);
    expect(maxRelativeError(logits[1], f(...logitsOf(h2)))).toBeLessThan(1e-14);
    expect(model.numCached).toBe(2);
  });
});

/**
 * A second, batch-form implementation written differently from ReferenceModel (HF-style
 * x·cos + rotate_half(x)·sin with duplicated cos/sin, explicit causal mask over a score
 * matrix): checks GQA head mapping, q/k/v biases, llama3 RoPE and tied embeddings.
 */
function batchForward(c: ModelConfig, w: ReferenceWeights, tokens: number[], invFreq: number[]): number[][] {
  const n = tokens.length;
  const H = c.hiddenSize;
  const D = c.headDim;
  const mat = (W: Float64Array, x: number[], out: number, b: Float64Array | null) =>
    Array.from({ length: out }, (_, o) => x.reduce((s, v, i) => s + W[o * x.length + i] * v, b ? b[o] : 0));
  const rmsNorm = (x: number[], g: Float64Array) => {
    const r = Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length + c.rmsNormEps);
    return x.map((v, i) => (v / r) * g[i]);
  };
  const rope = (head: number[], pos: number) => {
    const cos = [...invFreq, ...invFreq].map((f) => Math.cos(pos * f));
    const sin = [...invFreq, ...invFreq].map((f) => Math.sin(pos * f));
    const rotated = [...head.slice(D / 2).map((v) => -v), ...head.slice(0, D / 2)];
    return head.map((v, i) => v * cos[i] + rotated[i] * sin[i]);
  };
  let hs = tokens.map((t) => Array.from(w.embedTokens.subarray(t * H, (t + 1) * H)));
  for (const L of w.layers) {
    const xs = hs.map((h) => rmsNorm(h, L.inputNorm));
    const qs = xs.map((x) => mat(L.qProj, x, c.numHeads * D, L.qBias));
    const ks = xs.map((x) => mat(L.kProj, x, c.numKvHeads * D, L.kBias));
    const vs = xs.map((x) => mat(L.vProj, x, c.numKvHeads * D, L.vBias));
    const attnOut = hs.map(() => new Array<number>(c.numHeads * D).fill(0));
    for (let head = 0; head < c.numHeads; head++) {
      const kvHead = Math.floor((head * c.numKvHeads) / c.numHeads);
      const q = qs.map((v, p) => rope(v.slice(head * D, (head + 1) * D), p));
      const k = ks.map((v, p) => rope(v.slice(kvHead * D, (kvHead + 1) * D), p));
      for (let i = 0; i < n; i++) {
        const scores = k.map((kj, j) =>
          j <= i ? q[i].reduce((s, v, d) => s + v * kj[d], 0) / Math.sqrt(D) : -Infinity,
        );
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let j = 0; j < n; j++) {
          for (let d = 0; d < D; d++) attnOut[i][head * D + d] += (e[j] / z) * vs[j][kvHead * D + d];
        }
      }
    }
    hs = hs.map((h, i) => {
      const o = mat(L.oProj, attnOut[i], H, null);
      return h.map((v, j) => v + o[j]);
    });
    hs = hs.map((h) => {
      const x = rmsNorm(h, L.postAttentionNorm);
      const g = mat(L.gateProj, x, c.intermediateSize, null);
      const u = mat(L.upProj, x, c.intermediateSize, null);
      const down = mat(
        L.downProj,
        g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]),
        H,
        null,
      );
      return h.map((v, j) => v + down[j]);
    });
  }
  return hs.map((h) => mat(w.lmHead, rmsNorm(h, w.finalNorm), c.vocabSize, null));
}

describe('ReferenceModel against an independent batch-form forward', () => {
  it('GQA (6 heads / 2 KV heads), biases, llama3 RoPE, tied embeddings', () => {
    const config = parseModelConfig(
      {
        architectures: ['Qwen2ForCausalLM'],
        model_type: 'qwen2',
        hidden_size: 24,
        intermediate_size: 40,
        num_hidden_layers: 2,
        num_attention_heads: 6,
        num_key_value_heads: 2,
        head_dim: 8,
        vocab_size: 50,
        rms_norm_eps: 1e-6,
        rope_theta: 50,
        tie_word_embeddings: true,
        rope_scaling: {
          rope_type: 'llama3',
          factor: 4,
          low_freq_factor: 1,
          high_freq_factor: 2,
          original_max_position_embeddings: 40,
        },
      },
      'batch',
    );
    const rng = new Xoshiro128(99);
    const rand = (n: number, std = 0.3, mean = 0) => {
      const a = new Float64Array(n);
      rng.fillUniform(a, std, mean);
      return a;
    };
    const H = 24;
    const embed = rand(50 * H, 1);
    const weights: ReferenceWeights = {
      embedTokens: embed,
      layers: [0, 1].map(() => ({
        inputNorm: rand(H, 0.2, 1),
        qProj: rand(48 * H),
        kProj: rand(16 * H),
        vProj: rand(16 * H),
        qBias: rand(48),
        kBias: rand(16),
        vBias: rand(16),
        oProj: rand(H * 48),
        postAttentionNorm: rand(H, 0.2, 1),
        gateProj: rand(40 * H),
        upProj: rand(40 * H),
        downProj: rand(H * 40),
      })),
      finalNorm: rand(H, 0.2, 1),
      lmHead: embed,
    };
    // The llama3 frequencies, written out here from the rule (wavelength cut-offs 20 and 40).
    const invFreq = [0, 1, 2, 3].map((i) => {
      const fr = 50 ** (-i / 4);
      const wl = (2 * Math.PI) / fr;
      if (wl < 20) return fr;
      if (wl > 40) return fr / 4;
      const sm = 40 / wl - 1;
      return (1 - sm) * (fr / 4) + sm * fr;
    });
    expect(invFreq.filter((v, i) => v !== 50 ** (-i / 4)).length).toBeGreaterThan(0);
    const tokens = [3, 41, 7, 7, 0, 19, 33];
    const want = batchForward(config, weights, tokens, invFreq);
    const got = new ReferenceModel(config, weights).forward(tokens);
    for (let i = 0; i < tokens.length; i++) {
      expect(maxRelativeError(got[i], Float64Array.from(want[i]))).toBeLessThan(1e-12);
    }
  });
});

describe('ReferenceModel incremental decoding', () => {
  let config: ModelConfig;
  let weights: ReferenceWeights;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'seesaw-ref-'));
    await generateCheckpoint({ shape: 'tiny', seed: 11, dtype: 'bf16', outDir: dir, attentionBias: true });
    const ckpt = Checkpoint.open(dir);
    config = ckpt.config;
    weights = loadReferenceWeights(ckpt);
    ckpt.close();
  });

  it('prompt then one token at a time equals one full forward (within 1e-9)', () => {
    const tokens = [1, 450, 17, 2047, 3, 3, 999, 1200, 64, 5, 77, 1800];
    const full = new ReferenceModel(config, weights).forward(tokens);
    const model = new ReferenceModel(config, weights);
    const incremental = model.forward(tokens.slice(0, 5));
    for (const t of tokens.slice(5)) incremental.push(...model.forward([t]));
    expect(model.numCached).toBe(tokens.length);
    for (let i = 0; i < tokens.length; i++) {
      expect(maxRelativeError(incremental[i], full[i])).toBeLessThan(1e-9);
    }
    // Earlier tokens' logits do not depend on later tokens (causal mask).
    const prefix = new ReferenceModel(config, weights).forward(tokens.slice(0, 4));
    expect(maxRelativeError(prefix[3], full[3])).toBeLessThan(1e-12);
    // Later logits do depend on earlier tokens.
    const changed = new ReferenceModel(config, weights).forward([1, 451, ...tokens.slice(2)]);
    expect(maxRelativeError(changed[11], full[11])).toBeGreaterThan(1e-6);
  });

  it('reset() empties the cache and reproduces the first run', () => {
    const model = new ReferenceModel(config, weights);
    const first = model.forward([1, 2, 3]);
    model.reset();
    expect(model.numCached).toBe(0);
    const again = model.forward([1, 2, 3]);
    expect(again[2]).toEqual(first[2]);
    expect(() => model.forward([config.vocabSize])).toThrow(/outside vocab/);
  });
});
