/**
 * Tests only: what the WebGPU backend CLI tests share: why they cannot run here (no engine or
 * no WebGPU adapter), the seed, prompt lines of every sampling kind, and the tokens of an
 * output file (the generated models have no tokenizer, so records carry token ids).
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { generateCheckpoint } from '@seesaw/model';
import { openGpu } from '@seesaw/webgpu-device';
import type { BatchOutputRecord } from '../src/batch-output.ts';
import { findEngineUnavailableReason } from './e2e-test-support.ts';

export async function findWebGpuUnavailableReason(): Promise<string | null> {
  const engine = await findEngineUnavailableReason();
  if (engine !== null) return engine;
  const opened = await openGpu();
  if (!opened.ok) return opened.reason;
  opened.context.device.destroy();
  return null;
}

export function seedForTest(): number {
  const fromEnv = process.env.SEESAW_TEST_SEED;
  const seed = fromEnv ? Number(fromEnv) : Math.floor(Math.random() * 2 ** 31);
  console.log(`webgpu backend test seed ${seed} (replay with SEESAW_TEST_SEED=${seed})`);
  return seed;
}

/** Seeded sampling of every kind: steps that mix them read the logits back. */
export const MIXED_SAMPLING = [
  { temperature: 0.8, top_k: 40, top_p: 0.9 },
  { temperature: 1.2 },
  { temperature: 0.6, top_p: 0.5 },
  { temperature: 1.5, top_k: 8 },
];
/** Only top-k sampling beside the greedy lines: every step takes the GPU top-k path. */
export const TOP_K_SAMPLING = [
  { temperature: 0.8, top_k: 40, top_p: 0.9 },
  { temperature: 1.5, top_k: 8 },
];

/** Prompt lines: greedy ones of 3 to 40 tokens (several KV blocks), and seeded sampled ones. */
export function promptLines(seed: number, vocabSize: number, sampling: object[]): string {
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state;
  };
  const prompt = (length: number) => Array.from({ length }, () => 1 + (next() % (vocabSize - 1)));
  const lines = [3, 17, 40, 9].map((length, i) =>
    JSON.stringify({
      custom_id: `greedy-${i}`,
      prompt: prompt(length),
      max_tokens: 12,
      temperature: 0,
      ignore_eos: true,
    }),
  );
  sampling.forEach((params, i) => {
    lines.push(
      JSON.stringify({
        custom_id: `sampled-${i}`,
        prompt: prompt(5 + 4 * i),
        max_tokens: 10,
        seed: seed + i,
        ignore_eos: true,
        ...params,
      }),
    );
  });
  return `${lines.join('\n')}\n`;
}

/** custom_id -> generated token ids of a run's output file. */
export function outputTokens(path: string): Map<string, number[]> {
  const records: BatchOutputRecord[] = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line));
  return new Map(
    records.map((record) => {
      const tokenIds = record.response?.body.choices[0].token_ids;
      if (!tokenIds) throw new Error(`${record.custom_id}: no token_ids in ${JSON.stringify(record)}`);
      return [record.custom_id, tokenIds];
    }),
  );
}

/**
 * A generated tiny checkpoint without its tokenizer, so that a run's output records carry the
 * token ids themselves (outputTokens reads them).
 */
export async function generateTokenIdModel(
  outDir: string,
  seed: number,
  dtype: 'bf16' | 'f32',
): Promise<void> {
  await generateCheckpoint({ shape: 'tiny', seed, dtype, outDir });
  rmSync(join(outDir, 'tokenizer.json'));
  rmSync(join(outDir, 'tokenizer_config.json'));
}
