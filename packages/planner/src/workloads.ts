import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Xoshiro128 } from '@seesaw/model';

/** One offline request as the simulator sees it: lengths only (token ids are dummies). */
export interface WorkloadRequest {
  promptTokens: number;
  outputTokens: number;
}

export interface Workload {
  name: string;
  requests: WorkloadRequest[];
}

export class WorkloadError extends Error {
  override name = 'WorkloadError';
}

/** The length traces kept in this package (packages/planner/workloads, provenance in its README). */
export const DEFAULT_WORKLOADS_DIR =
  process.env.SEESAW_WORKLOADS_DIR ?? join(import.meta.dirname, '../workloads');

function checkedRequest(prompt: number, output: number, where: string): WorkloadRequest {
  if (!(Number.isInteger(prompt) && prompt >= 1 && Number.isInteger(output) && output >= 1)) {
    throw new WorkloadError(`${where}: prompt_tokens and output_tokens must be positive integers`);
  }
  return { promptTokens: prompt, outputTokens: output };
}

/** Parses `prompt_tokens,output_tokens` CSV (header line first). */
export function parseLengthsCsv(text: string, source: string): WorkloadRequest[] {
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  const header =
    lines
      .shift()
      ?.split(',')
      .map((cell) => cell.trim()) ?? [];
  const promptColumn = header.indexOf('prompt_tokens');
  const outputColumn = header.indexOf('output_tokens');
  if (promptColumn < 0 || outputColumn < 0) {
    throw new WorkloadError(`${source}: header must name prompt_tokens and output_tokens`);
  }
  return lines.map((line, i) => {
    const cells = line.split(',');
    return checkedRequest(Number(cells[promptColumn]), Number(cells[outputColumn]), `${source}:${i + 2}`);
  });
}

/** Parses JSONL lines of {"prompt_tokens": N, "output_tokens": M}. */
export function parseLengthsJsonl(text: string, source: string): WorkloadRequest[] {
  const requests: WorkloadRequest[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    let row: { prompt_tokens?: unknown; output_tokens?: unknown };
    try {
      row = JSON.parse(line);
    } catch (error) {
      throw new WorkloadError(`${source}:${i + 1}: invalid JSON (${(error as Error).message})`);
    }
    requests.push(checkedRequest(Number(row.prompt_tokens), Number(row.output_tokens), `${source}:${i + 1}`));
  });
  return requests;
}

/** `count` rows drawn without replacement (partial Fisher-Yates, seeded), in draw order. */
export function sampleRequests(
  rows: readonly WorkloadRequest[],
  count: number,
  seed: number,
): WorkloadRequest[] {
  if (count > rows.length)
    throw new WorkloadError(`asked for ${count} requests, only ${rows.length} qualify`);
  const random = new Xoshiro128(seed);
  const pool = [...rows];
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(random.nextFloat() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, count);
}

export interface WorkloadOptions {
  numRequests?: number;
  seed?: number;
  dir?: string;
  /** Drop requests longer than this (prompt + output). */
  maxModelLen?: number;
}

/**
 * ShareGPT-like: Sarathi-Serve's processed ShareGPT trace (sharegpt-lengths.csv, see the
 * workloads README), with the Seesaw evaluation's filters: prompt >= 100, output >= 20,
 * prompt + output <= 4096; 2000 requests by default.
 */
export function shareGptWorkload(options: WorkloadOptions = {}): Workload {
  const rows = parseLengthsCsv(
    readFileSync(join(options.dir ?? DEFAULT_WORKLOADS_DIR, 'sharegpt-lengths.csv'), 'utf8'),
    'sharegpt-lengths.csv',
  ).filter((r) => r.promptTokens >= 100 && r.outputTokens >= 20 && r.promptTokens + r.outputTokens <= 4096);
  return { name: 'sharegpt', requests: sampleRequests(rows, options.numRequests ?? 2000, options.seed ?? 0) };
}

/**
 * arxiv-like: Vidur's processed arxiv-summarization trace (arxiv-lengths.csv, see the
 * workloads README), filtered to prompt + output <= 4096 as in the Seesaw evaluation; 500
 * requests by default.
 */
export function arxivWorkload(options: WorkloadOptions = {}): Workload {
  const rows = parseLengthsCsv(
    readFileSync(join(options.dir ?? DEFAULT_WORKLOADS_DIR, 'arxiv-lengths.csv'), 'utf8'),
    'arxiv-lengths.csv',
  ).filter((r) => r.promptTokens + r.outputTokens <= 4096);
  return { name: 'arxiv', requests: sampleRequests(rows, options.numRequests ?? 500, options.seed ?? 0) };
}

export function constantWorkload(numRequests: number, promptTokens: number, outputTokens: number): Workload {
  const request = checkedRequest(promptTokens, outputTokens, 'constant workload');
  return {
    name: `constant:${promptTokens}:${outputTokens}`,
    requests: Array.from({ length: numRequests }, () => ({ ...request })),
  };
}

/**
 * 'sharegpt', 'arxiv', 'constant:IN:OUT' (default 500 requests) or a .jsonl / .csv file of
 * lengths (all its rows unless numRequests samples some).
 */
export function loadWorkload(spec: string, options: WorkloadOptions = {}): Workload {
  let workload: Workload;
  const constant = /^constant:(\d+):(\d+)$/.exec(spec);
  if (spec === 'sharegpt') workload = shareGptWorkload(options);
  else if (spec === 'arxiv') workload = arxivWorkload(options);
  else if (constant)
    workload = constantWorkload(options.numRequests ?? 500, Number(constant[1]), Number(constant[2]));
  else if (spec.endsWith('.jsonl') || spec.endsWith('.csv')) {
    let text: string;
    try {
      text = readFileSync(spec, 'utf8');
    } catch (error) {
      throw new WorkloadError(`cannot read workload ${spec}: ${(error as Error).message}`);
    }
    const rows = spec.endsWith('.csv') ? parseLengthsCsv(text, spec) : parseLengthsJsonl(text, spec);
    const requests =
      options.numRequests === undefined ? rows : sampleRequests(rows, options.numRequests, options.seed ?? 0);
    workload = { name: spec, requests };
  } else {
    throw new WorkloadError(
      `workload '${spec}' is not sharegpt, arxiv, constant:IN:OUT or a .jsonl/.csv file of prompt_tokens/output_tokens`,
    );
  }
  const { maxModelLen } = options;
  if (maxModelLen !== undefined) {
    workload.requests = workload.requests.filter((r) => r.promptTokens + r.outputTokens <= maxModelLen);
  }
  return workload;
}
