/**
 * `seesaw` with no arguments: the built-in main job. Generates (once) the small bf16 checkpoint,
 * writes a fixed workload of random-token prompts and runs it through the same path as
 * `seesaw run`, then prints the throughput lines of `bench`.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModelConfig } from '@seesaw/model';
import { runJob } from './commands/run-job.ts';
import { ensureCachedModel, type GeneratedModelSpec, REPO_ROOT } from './model-cache.ts';
import { formatRunSummary } from './run-summary.ts';
import { SeededRandom } from './seeded-random.ts';
import { formatThroughputLines } from './throughput-report.ts';

export const DEFAULT_JOB = {
  model: { shape: 'small', dtype: 'bf16', seed: 0 } satisfies GeneratedModelSpec,
  numPrompts: 32,
  promptLen: 128,
  outputLen: 64,
  numThreads: 2,
  workloadSeed: 0,
};

/** The built-in workload as prompts-file lines: greedy, fixed output length. */
export function defaultWorkloadLines(vocabSize: number): string[] {
  const random = new SeededRandom(DEFAULT_JOB.workloadSeed);
  return Array.from({ length: DEFAULT_JOB.numPrompts }, (_, index) =>
    JSON.stringify({
      custom_id: `default-${index}`,
      prompt: random.tokenIds(DEFAULT_JOB.promptLen, vocabSize),
      max_tokens: DEFAULT_JOB.outputLen,
      temperature: 0,
      ignore_eos: true,
    }),
  );
}

export async function defaultJob(root: string = REPO_ROOT): Promise<number> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const modelDir = await ensureCachedModel(DEFAULT_JOB.model, log, root);
  const workDir = join(root, '.seesaw');
  mkdirSync(workDir, { recursive: true });
  const inputPath = join(workDir, 'default-prompts.jsonl');
  const outputPath = join(workDir, 'default-results.jsonl');
  writeFileSync(inputPath, `${defaultWorkloadLines(loadModelConfig(modelDir).vocabSize).join('\n')}\n`);
  // A fresh output each time: resuming would skip everything and measure nothing.
  rmSync(outputPath, { force: true });
  log(
    `default job: ${DEFAULT_JOB.numPrompts} prompts x ${DEFAULT_JOB.promptLen} tokens, ` +
      `${DEFAULT_JOB.outputLen} output tokens each, greedy, ${DEFAULT_JOB.numThreads} threads, model ${modelDir}`,
  );
  const summary = await runJob({
    modelDir,
    inputPath,
    outputPath,
    numThreads: DEFAULT_JOB.numThreads,
    progressStream: process.stderr,
    log,
  });
  process.stdout.write(formatRunSummary(summary));
  process.stdout.write(
    formatThroughputLines({
      numRequests: summary.numOk,
      numPromptTokens: summary.numPromptTokens,
      numOutputTokens: summary.numOutputTokens,
      elapsedMs: summary.engineElapsedMs,
    }),
  );
  return summary.numErrors === 0 ? 0 : 1;
}
