import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Loads the measured GPU tables of a calibration directory (the layout of Vidur's profiling
 * data: `compute/<gpu>/<org>/<model>/mlp.csv`, `network/<cluster>/{all_reduce,send_recv}.csv`).
 * Only medians are kept: they are what the cost model is fitted to and judged against.
 */

export class CalibrationDataError extends Error {
  override name = 'CalibrationDataError';
}

/** The per-layer ops of the compute tables. */
export const LINEAR_OPS = ['attn_pre_proj', 'attn_post_proj', 'mlp_up_proj', 'mlp_down_proj'] as const;
export const ELEMENTWISE_OPS = [
  'input_layernorm',
  'post_attention_layernorm',
  'attn_rope',
  'mlp_act',
  'add',
  'emb',
] as const;
export type LinearOp = (typeof LINEAR_OPS)[number];
export type ElementwiseOp = (typeof ELEMENTWISE_OPS)[number];
export type ComputeOp = LinearOp | ElementwiseOp;
export const COMPUTE_OPS: readonly ComputeOp[] = [...LINEAR_OPS, ...ELEMENTWISE_OPS];

/** The model shape columns of a compute table row. */
export interface OpModelShape {
  numHeads: number;
  numKvHeads: number;
  hiddenSize: number;
  intermediateSize: number;
  vocabSize: number;
  gatedMlp: boolean;
}

/** One measured op: median milliseconds for one layer on one GPU. */
export interface ComputeSample {
  gpu: string;
  model: string;
  op: ComputeOp;
  numTokens: number;
  tp: number;
  shape: OpModelShape;
  medianMs: number;
}

export interface NetworkSample {
  cluster: string;
  collective: 'all_reduce' | 'send_recv';
  numWorkers: number;
  devicesPerNode: number;
  sizeBytes: number;
  medianMs: number;
}

/** A numeric CSV with a header row and no quoted fields (all the tables are numbers and names). */
function parseCsv(path: string): Record<string, string>[] {
  const lines = readFileSync(path, 'utf8')
    .split(/\r?\n/)
    .filter((line) => line.length > 0);
  if (lines.length < 2) throw new CalibrationDataError(`${path}: no data rows`);
  const header = lines[0].split(',');
  return lines.slice(1).map((line, i) => {
    const cells = line.split(',');
    if (cells.length !== header.length)
      throw new CalibrationDataError(`${path}:${i + 2}: ${cells.length} cells, header has ${header.length}`);
    return Object.fromEntries(header.map((name, c) => [name, cells[c]]));
  });
}

function numberCell(row: Record<string, string>, column: string, where: string): number {
  const text = row[column];
  if (text === undefined) throw new CalibrationDataError(`${where}: no column '${column}'`);
  const value = Number(text);
  if (text === '' || !Number.isFinite(value))
    throw new CalibrationDataError(`${where}: column '${column}' is '${text}', not a number`);
  return value;
}

function filesNamed(dir: string, name: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) found.push(...filesNamed(path, name));
    else if (entry === name) found.push(path);
  }
  return found.sort();
}

export function loadComputeSamples(calibrationDir: string): ComputeSample[] {
  const computeDir = join(calibrationDir, 'compute');
  const files = filesNamed(computeDir, 'mlp.csv');
  if (files.length === 0)
    throw new CalibrationDataError(`${computeDir}: no compute/<gpu>/.../mlp.csv tables`);
  const samples: ComputeSample[] = [];
  for (const file of files) {
    const [gpu, ...modelParts] = relative(computeDir, file).split(/[\\/]/).slice(0, -1);
    const model = modelParts.join('/');
    parseCsv(file).forEach((row, i) => {
      const where = `${file}:${i + 2}`;
      const shape: OpModelShape = {
        numHeads: numberCell(row, 'n_head', where),
        numKvHeads: numberCell(row, 'n_kv_head', where),
        hiddenSize: numberCell(row, 'n_embd', where),
        intermediateSize: numberCell(row, 'n_expanded_embd', where),
        vocabSize: numberCell(row, 'vocab_size', where),
        gatedMlp: row.use_gated_mlp === 'True' || row.use_gated_mlp === 'true' || row.use_gated_mlp === '1',
      };
      const numTokens = numberCell(row, 'num_tokens', where);
      const tp = numberCell(row, 'num_tensor_parallel_workers', where);
      for (const op of COMPUTE_OPS) {
        const column = `time_stats.${op}.median`;
        if (row[column] === undefined || row[column] === '') continue;
        samples.push({ gpu, model, op, numTokens, tp, shape, medianMs: numberCell(row, column, where) });
      }
    });
  }
  return samples;
}

export function loadNetworkSamples(calibrationDir: string): NetworkSample[] {
  const networkDir = join(calibrationDir, 'network');
  const samples: NetworkSample[] = [];
  for (const collective of ['all_reduce', 'send_recv'] as const) {
    for (const file of filesNamed(networkDir, `${collective}.csv`)) {
      const cluster = relative(networkDir, file).split(/[\\/]/)[0];
      parseCsv(file).forEach((row, i) => {
        const where = `${file}:${i + 2}`;
        samples.push({
          cluster,
          collective,
          numWorkers: numberCell(row, 'num_workers', where),
          devicesPerNode: numberCell(row, 'devices_per_node', where),
          sizeBytes: numberCell(row, 'size', where),
          medianMs: numberCell(row, `time_stats.${collective}.median`, where),
        });
      });
    }
  }
  if (samples.length === 0)
    throw new CalibrationDataError(`${networkDir}: no network/<cluster>/*.csv tables`);
  return samples;
}
