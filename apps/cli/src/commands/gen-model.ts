/** `seesaw gen-model`: writes a deterministic random Llama checkpoint (with tokenizer) to a directory. */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { generateCheckpoint, MODEL_SHAPES, type ModelShapeName } from '@seesaw/model';
import {
  optionalByteSize,
  optionalChoice,
  optionalInteger,
  parseFlags,
  requiredString,
  UsageError,
} from '../args.ts';
import { formatByteSize } from '../byte-size.ts';
import { commandFlagSpec } from '../command-flags.ts';
import { CHECKPOINT_DTYPES } from '../model-cache.ts';

export const GEN_MODEL_FLAGS = commandFlagSpec('gen-model');

export function shapeNames(): ModelShapeName[] {
  return Object.keys(MODEL_SHAPES) as ModelShapeName[];
}

function directoryBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) total += statSync(join(dir, name)).size;
  return total;
}

export async function genModelCommand(argv: string[]): Promise<number> {
  const values = parseFlags('gen-model', argv, GEN_MODEL_FLAGS);
  const shape = optionalChoice(values, 'shape', shapeNames());
  if (shape === undefined) throw new UsageError(`missing required flag --shape (${shapeNames().join(', ')})`);
  const seed = optionalInteger(values, 'seed', { min: 0, max: 2 ** 32 - 1 }) ?? 0;
  const dtype = optionalChoice(values, 'dtype', CHECKPOINT_DTYPES) ?? 'bf16';
  const outDir = requiredString(values, 'out');
  const maxShardBytes = optionalByteSize(values, 'max-shard-size');
  const startMs = performance.now();
  await generateCheckpoint({ shape, seed, dtype, outDir, maxShardBytes });
  const seconds = (performance.now() - startMs) / 1000;
  process.stdout.write(
    `wrote the ${shape} ${dtype} checkpoint (seed ${seed}, ${formatByteSize(directoryBytes(outDir))}) ` +
      `to ${outDir} in ${seconds.toFixed(1)} s\n`,
  );
  return 0;
}
