/**
 * `pnpm bench:serve`: submits one batch through the OpenAI Batch API of `seesaw serve` and
 * prints the same throughput lines as `seesaw bench`, timed from batch creation to the
 * downloaded output (upload and polling included, model loading not).
 *
 *   pnpm bench:serve --url http://HOST:PORT/v1 --api-key-file F [--num-prompts N --input-len I --output-len O]
 *   pnpm bench:serve [--shape tiny|small] [--threads N] ...   (starts its own server on a generated model)
 *
 * Prompts are random token ids in [100, 1000) (seeded), so any vocabulary of 1000+ tokens takes them.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { optionalChoice, optionalInteger, optionalString, parseFlags } from '../src/args.ts';
import type { SuccessRecord } from '../src/batch-output.ts';
import { ensureCachedModel } from '../src/model-cache.ts';
import { SeededRandom } from '../src/seeded-random.ts';
import { formatThroughputLines } from '../src/throughput-report.ts';
import { runSeesaw } from '../test/e2e-test-support.ts';
import { startServe } from '../test/serve-test-support.ts';

const FLAGS = {
  url: { type: 'string' },
  'api-key-file': { type: 'string' },
  shape: { type: 'string' },
  threads: { type: 'string' },
  'num-prompts': { type: 'string' },
  'input-len': { type: 'string' },
  'output-len': { type: 'string' },
  seed: { type: 'string' },
} as const;

function batchContent(numPrompts: number, inputLen: number, outputLen: number, seed: number): string {
  const random = new SeededRandom(seed);
  const lines: string[] = [];
  for (let index = 0; index < numPrompts; index++) {
    const prompt = Array.from({ length: inputLen }, () => 100 + random.nextInt(900));
    const body = { prompt, max_tokens: outputLen, ignore_eos: true, temperature: 0 };
    lines.push(JSON.stringify({ custom_id: `bench-${index}`, method: 'POST', url: '/v1/completions', body }));
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const values = parseFlags('bench:serve', process.argv.slice(2), FLAGS);
  const numPrompts = optionalInteger(values, 'num-prompts', { min: 1 }) ?? 64;
  const inputLen = optionalInteger(values, 'input-len', { min: 1 }) ?? 32;
  const outputLen = optionalInteger(values, 'output-len', { min: 1 }) ?? 32;
  const seed = optionalInteger(values, 'seed', { min: 0 }) ?? 0;
  let url = optionalString(values, 'url');
  let keyFile = optionalString(values, 'api-key-file');
  let stop = async () => {};
  if (url === undefined) {
    const shape = optionalChoice(values, 'shape', ['tiny', 'small'] as const) ?? 'tiny';
    const modelDir = await ensureCachedModel({ shape, dtype: 'bf16', seed: 0 }, console.error);
    const dir = mkdtempSync(join(tmpdir(), 'seesaw-bench-serve-'));
    keyFile = join(dir, 'api-key');
    const token = await runSeesaw(['token', '--out', keyFile]);
    if (token.status !== 0) throw new Error(token.stderr);
    const threads = optionalString(values, 'threads');
    const server = await startServe([
      ...['--model', modelDir, '--state-dir', join(dir, 'state'), '--api-key-file', keyFile],
      ...(threads === undefined ? [] : ['--threads', threads]),
    ]);
    url = server.baseUrl;
    stop = async () => {
      server.child.kill('SIGTERM');
      await server.exited;
      rmSync(dir, { recursive: true, force: true });
    };
  }
  if (keyFile === undefined) throw new Error('--url needs --api-key-file F');
  try {
    const client = new OpenAI({ apiKey: readFileSync(keyFile, 'utf8').trim(), baseURL: url, maxRetries: 0 });
    const content = batchContent(numPrompts, inputLen, outputLen, seed);
    const startMs = performance.now();
    const file = await client.files.create({
      file: await toFile(Buffer.from(content), 'bench.jsonl'),
      purpose: 'batch',
    });
    let batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/completions',
      completion_window: '24h',
    });
    while (!['completed', 'failed', 'cancelled', 'expired'].includes(batch.status)) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      batch = await client.batches.retrieve(batch.id);
    }
    const outputFileId = batch.output_file_id;
    if (batch.status !== 'completed' || typeof outputFileId !== 'string')
      throw new Error(`batch ended ${batch.status}`);
    const output = await (await client.files.content(outputFileId)).text();
    const elapsedMs = performance.now() - startMs;
    const records = output
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as SuccessRecord);
    let numPromptTokens = 0;
    let numOutputTokens = 0;
    for (const record of records) {
      numPromptTokens += record.response.body.usage.prompt_tokens;
      numOutputTokens += record.response.body.usage.completion_tokens;
    }
    console.log(`batch ${batch.id} on ${url}: ${records.length} of ${numPrompts} requests completed`);
    process.stdout.write(
      formatThroughputLines({ numRequests: records.length, numPromptTokens, numOutputTokens, elapsedMs }),
    );
  } finally {
    await stop();
  }
}

await main();
