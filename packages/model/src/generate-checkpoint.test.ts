import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from './checkpoint.ts';
import { f32ToBf16Bits, f32ToF16Bits } from './dtype-convert.ts';
import { expectedTensors } from './expected-tensors.ts';
import { generateCheckpoint } from './generate-checkpoint.ts';
import { MODEL_SHAPES } from './model-shapes.ts';
import { ReferenceModel } from './reference-forward.ts';
import { loadReferenceWeights, readTensorF64 } from './reference-weights.ts';
import { SeesawTokenizer } from './tokenizer.ts';

type Options = Parameters<typeof generateCheckpoint>[0];

async function generate(opts: Omit<Options, 'outDir'>): Promise<string> {
  const outDir = mkdtempSync(join(tmpdir(), 'seesaw-gen-'));
  await generateCheckpoint({ ...opts, outDir });
  return outDir;
}

function dirContents(dir: string): Map<string, Buffer> {
  return new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
}

function rawTensorBytes(dir: string, name: string): Uint8Array {
  const ckpt = Checkpoint.open(dir);
  const bytes = new Uint8Array(ckpt.info(name).byteLength);
  ckpt.readBytes(name, bytes);
  ckpt.close();
  return bytes;
}

/** Greedy decode with the float64 reference; returns the generated ids. */
function greedy(dir: string, prompt: number[], steps: number): { ids: number[]; firstLogitStd: number } {
  const ckpt = Checkpoint.open(dir);
  const model = new ReferenceModel(ckpt.config, loadReferenceWeights(ckpt));
  ckpt.close();
  let logits = model.forward(prompt);
  const ids: number[] = [];
  let firstLogitStd = 0;
  for (let s = 0; s < steps; s++) {
    const last = logits[logits.length - 1];
    let best = 0;
    for (let i = 1; i < last.length; i++) if (last[i] > last[best]) best = i;
    if (s === 0) {
      const mean = last.reduce((a, b) => a + b, 0) / last.length;
      firstLogitStd = Math.sqrt(last.reduce((a, b) => a + (b - mean) ** 2, 0) / last.length);
    }
    ids.push(best);
    logits = model.forward([best]);
  }
  return { ids, firstLogitStd };
}

describe('generateCheckpoint (tiny)', () => {
  let dirA: string;

  beforeAll(async () => {
    dirA = await generate({ shape: 'tiny', seed: 42, dtype: 'bf16' });
  });

  it('writes the Hugging Face layout and a checkpoint that validates', () => {
    expect(readdirSync(dirA).sort()).toEqual([
      'config.json',
      'generation_config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    const ckpt = Checkpoint.open(dirA);
    ckpt.validate();
    const s = MODEL_SHAPES.tiny;
    expect(ckpt.config).toMatchObject({
      hiddenSize: s.hidden,
      numLayers: s.layers,
      numHeads: s.heads,
      numKvHeads: s.kvHeads,
      headDim: 32,
      intermediateSize: s.intermediate,
      vocabSize: s.vocab,
      maxPositionEmbeddings: 2048,
      ropeTheta: 10000,
      rmsNormEps: 1e-5,
      bosTokenId: 1,
      eosTokenIds: [2],
      torchDtype: 'bfloat16',
      tieWordEmbeddings: false,
      attentionBias: false,
    });
    expect(ckpt.info('lm_head.weight').dtype).toBe('BF16');
    ckpt.close();
  });

  it('is byte-for-byte deterministic for the same seed and differs for another seed', async () => {
    const again = dirContents(await generate({ shape: 'tiny', seed: 42, dtype: 'bf16' }));
    const first = dirContents(dirA);
    expect([...again.keys()].sort()).toEqual([...first.keys()].sort());
    for (const [file, bytes] of first) expect(again.get(file)!.equals(bytes), file).toBe(true);
    const other = dirContents(await generate({ shape: 'tiny', seed: 43, dtype: 'bf16' }));
    expect(other.get('model.safetensors')!.equals(first.get('model.safetensors')!)).toBe(false);
    expect(other.get('config.json')!.equals(first.get('config.json')!)).toBe(true);
  });

  it('draws weights at the intended scales', () => {
    const ckpt = Checkpoint.open(dirA);
    const stdOf = (name: string) => {
      const v = readTensorF64(ckpt, name);
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      return { mean, std: Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length) };
    };
    const near = (got: number, want: number) => expect(Math.abs(got / want - 1)).toBeLessThan(0.05);
    near(stdOf('model.embed_tokens.weight').std, 1);
    near(stdOf('model.layers.1.self_attn.q_proj.weight').std, 1 / 16);
    near(stdOf('model.layers.1.mlp.down_proj.weight').std, 1 / Math.sqrt(768) / Math.sqrt(8));
    near(stdOf('model.layers.3.input_layernorm.weight').mean, 1);
    ckpt.close();
  });

  it('f16 and bf16 hold the round-to-nearest-even of the same float32 draws, whatever the sharding', async () => {
    const f32Dir = await generate({ shape: 'tiny', seed: 42, dtype: 'f32' });
    const f16Dir = await generate({ shape: 'tiny', seed: 42, dtype: 'f16', maxShardBytes: 1_000_000 });
    const name = 'model.layers.2.self_attn.k_proj.weight';
    const f32 = new Float32Array(rawTensorBytes(f32Dir, name).buffer);
    const bf16 = new Uint16Array(rawTensorBytes(dirA, name).buffer);
    const f16 = new Uint16Array(rawTensorBytes(f16Dir, name).buffer);
    expect(f32.length).toBe(128 * 256);
    for (let i = 0; i < f32.length; i++) {
      if (bf16[i] !== f32ToBf16Bits(f32[i]) || f16[i] !== f32ToF16Bits(f32[i])) {
        throw new Error(`element ${i}: f32 ${f32[i]} bf16 ${bf16[i]} f16 ${f16[i]}`);
      }
    }
  });

  it('shards with an index when maxShardBytes is given, with the same tensor bytes', async () => {
    const dir = await generate({ shape: 'tiny', seed: 42, dtype: 'bf16', maxShardBytes: 2_000_000 });
    const files = readdirSync(dir);
    const shards = files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).sort();
    expect(shards.length).toBeGreaterThan(2);
    expect(shards[0]).toBe(`model-00001-of-${String(shards.length).padStart(5, '0')}.safetensors`);
    expect(files).not.toContain('model.safetensors');
    const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
    const ckpt = Checkpoint.open(dir);
    ckpt.validate();
    expect(Object.keys(index.weight_map).sort()).toEqual(
      expectedTensors(ckpt.config)
        .map((t) => t.name)
        .sort(),
    );
    expect(index.metadata.total_size).toBe(
      readFileSync(join(dirA, 'model.safetensors')).length - 8 - headerLength(dirA),
    );
    for (const shard of shards) {
      const size = readFileSync(join(dir, shard)).length;
      // Only a single tensor bigger than the limit (embeddings, lm_head: 1 MiB) may exceed it.
      expect(size).toBeLessThan(2_000_000 + 64 * 1024);
    }
    ckpt.close();
    for (const name of ['model.embed_tokens.weight', 'model.layers.3.mlp.up_proj.weight', 'lm_head.weight']) {
      expect(Buffer.from(rawTensorBytes(dir, name)).equals(Buffer.from(rawTensorBytes(dirA, name)))).toBe(
        true,
      );
    }
    // Regenerating unsharded into the same directory removes the stale shards and index.
    await generateCheckpoint({ shape: 'tiny', seed: 42, dtype: 'bf16', outDir: dir });
    expect(
      readdirSync(dir)
        .filter((f) => f.startsWith('model'))
        .sort(),
    ).toEqual(['model.safetensors']);
  });

  it('ships a tokenizer that round-trips text and covers the whole vocab', () => {
    const tok = SeesawTokenizer.load(dirA)!;
    expect(tok.vocabSize).toBe(2048);
    const text = 'Seesaw generates tokens: 1, 2, 3... ünïcödé ✓';
    const ids = tok.encode(text);
    expect(ids[0]).toBe(1);
    expect(Math.max(...ids)).toBeLessThan(2048);
    expect(tok.decode(ids)).toBe(text);
  });

  it('greedy decoding of the generated model does not get stuck (untied and tied)', async () => {
    const tiedDir = await generate({ shape: 'tiny', seed: 5, dtype: 'bf16', tieWordEmbeddings: true });
    for (const dir of [dirA, tiedDir]) {
      const { ids, firstLogitStd } = greedy(dir, [1, 300, 301, 302], 24);
      expect(firstLogitStd).toBeGreaterThan(0.5);
      expect(new Set(ids.slice(8)).size).toBeGreaterThan(8);
    }
    expect(Checkpoint.open(tiedDir).has('lm_head.weight')).toBe(false);
  });

  it('writes q/k/v biases when asked', async () => {
    const dir = await generate({ shape: 'tiny', seed: 1, dtype: 'bf16', attentionBias: true });
    const ckpt = Checkpoint.open(dir);
    ckpt.validate();
    expect(ckpt.config.attentionBias).toBe(true);
    expect(ckpt.info('model.layers.0.self_attn.k_proj.bias').shape).toEqual([128]);
    ckpt.close();
  });
});

function headerLength(dir: string): number {
  return Number(readFileSync(join(dir, 'model.safetensors')).readBigUInt64LE(0));
}
