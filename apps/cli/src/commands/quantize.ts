/** `seesaw quantize`: writes a Hugging Face checkpoint as a llama GGUF file with quantized matrices. */
import { statSync } from 'node:fs';
import { convertToGguf, GGUF_TARGET_TYPES, type GgufTargetType } from '@seesaw/model';
import { optionalChoice, parseFlags, requiredString, UsageError } from '../args.ts';
import { formatByteSize } from '../byte-size.ts';
import { commandFlagSpec } from '../command-flags.ts';

export const QUANTIZE_FLAGS = commandFlagSpec('quantize');

const TYPE_NAMES = GGUF_TARGET_TYPES.map((t) => t.toLowerCase());

export async function quantizeCommand(argv: string[]): Promise<number> {
  const values = parseFlags('quantize', argv, QUANTIZE_FLAGS);
  const modelDir = requiredString(values, 'model');
  const type = optionalChoice(values, 'type', TYPE_NAMES);
  if (type === undefined) throw new UsageError(`missing required flag --type (${TYPE_NAMES.join(', ')})`);
  const outPath = requiredString(values, 'out');
  if (!outPath.toLowerCase().endsWith('.gguf'))
    throw new UsageError(`--out must name a .gguf file, got ${outPath}`);
  const startMs = performance.now();
  convertToGguf({ modelDir, outPath, type: type.toUpperCase() as GgufTargetType });
  const seconds = (performance.now() - startMs) / 1000;
  process.stdout.write(
    `wrote ${outPath} (${type}, ${formatByteSize(statSync(outPath).size)}) in ${seconds.toFixed(1)} s\n`,
  );
  return 0;
}
