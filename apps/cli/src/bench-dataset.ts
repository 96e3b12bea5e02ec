/**
 * Benchmark workloads, as vLLM's benchmark_throughput builds them: random token ids of fixed
 * lengths, lengths sampled from a `prompt_tokens,output_tokens` trace (with random ids of
 * those lengths), or a prompts JSONL file in the `run` format.
 */
import type { SamplingParams } from '@seesaw/coordinator';
import { type InputValidationContext, parseInputFile } from './input-lines.ts';
import { SeededRandom } from './seeded-random.ts';

export interface BenchRequest {
  promptTokenIds: number[];
  sampling: SamplingParams;
}

/** Sampled decoding with a fixed output length, like vLLM's throughput benchmark. */
function benchSampling(outputLen: number, seed: number): SamplingParams {
  return { maxTokens: outputLen, temperature: 1, topP: 1, topK: 0, seed, stopTokenIds: [], ignoreEos: true };
}

export function randomDataset(options: {
  numPrompts: number;
  inputLen: number;
  outputLen: number;
  vocabSize: number;
  seed: number;
}): BenchRequest[] {
  const random = new SeededRandom(options.seed);
  return Array.from({ length: options.numPrompts }, () => ({
    promptTokenIds: random.tokenIds(options.inputLen, options.vocabSize),
    sampling: benchSampling(options.outputLen, random.nextUint32()),
  }));
}

export interface LengthPair {
  promptTokens: number;
  outputTokens: number;
}

export class DatasetError extends Error {
  override name = 'DatasetError';
}

/** Parses a `prompt_tokens,output_tokens` CSV (header required); errors name the line. */
export function parseLengthsCsv(content: string, source: string): LengthPair[] {
  const lines = content.split('\n').map((line) => line.replace(/\r$/, ''));
  if (lines[0]?.trim() !== 'prompt_tokens,output_tokens') {
    throw new DatasetError(`${source}: first line must be the header 'prompt_tokens,output_tokens'`);
  }
  const pairs: LengthPair[] = [];
  for (let index = 1; index < lines.length; index++) {
    const line = lines[index].trim();
    if (line === '') continue;
    const match = /^(\d+),(\d+)$/.exec(line);
    if (match === null) {
      throw new DatasetError(`${source}:${index + 1}: expected two non-negative integers, got '${line}'`);
    }
    pairs.push({ promptTokens: Number(match[1]), outputTokens: Number(match[2]) });
  }
  return pairs;
}

/**
 * Samples `numPrompts` distinct rows with the seed, keeping only rows the model can run
 * (prompt >= 1, output >= 1, prompt + output <= maxModelLen, as the Seesaw evaluation
 * filtered its traces), and gives each a random prompt of its length.
 */
export function sampleLengthsDataset(
  pairs: LengthPair[],
  options: { numPrompts: number; vocabSize: number; maxModelLen: number; seed: number; outputLen?: number },
): { requests: BenchRequest[]; numFiltered: number } {
  const usable = pairs.filter((pair) => {
    const outputTokens = options.outputLen ?? pair.outputTokens;
    return (
      pair.promptTokens >= 1 && outputTokens >= 1 && pair.promptTokens + outputTokens <= options.maxModelLen
    );
  });
  if (usable.length < options.numPrompts) {
    throw new DatasetError(
      `only ${usable.length} of ${pairs.length} rows fit the model (prompt + output <= ${options.maxModelLen}); ` +
        `asked for ${options.numPrompts}`,
    );
  }
  const random = new SeededRandom(options.seed);
  const indices = random.sampleIndices(usable.length, options.numPrompts);
  const requests = indices.map((index) => {
    const pair = usable[index];
    return {
      promptTokenIds: random.tokenIds(pair.promptTokens, options.vocabSize),
      sampling: benchSampling(options.outputLen ?? pair.outputTokens, random.nextUint32()),
    };
  });
  return { requests, numFiltered: pairs.length - usable.length };
}

/** The first `numPrompts` requests of a prompts JSONL file; any invalid line fails the benchmark. */
export function jsonlDataset(
  content: string,
  source: string,
  options: { numPrompts: number; outputLen?: number },
  context: InputValidationContext,
): BenchRequest[] {
  const requests: BenchRequest[] = [];
  for (const result of parseInputFile(content, context)) {
    if (!result.isOk) throw new DatasetError(`${source}: ${result.error.message}`);
    const sampling = { ...result.request.sampling };
    if (options.outputLen !== undefined) sampling.maxTokens = options.outputLen;
    requests.push({ promptTokenIds: result.request.promptTokenIds, sampling });
    if (requests.length === options.numPrompts) return requests;
  }
  throw new DatasetError(`${source} has only ${requests.length} requests; asked for ${options.numPrompts}`);
}
