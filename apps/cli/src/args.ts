/**
 * Flag parsing shared by every command: node:util parseArgs in strict mode, with each
 * mistake turned into a UsageError (exit status 2) whose message names the flag.
 */
import { parseArgs } from 'node:util';
import { ByteSizeError, parseByteSize } from './byte-size.ts';

/** A mistake in how the command was called; main prints it with a usage hint and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export type FlagSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;
export type FlagValues = Record<string, string | boolean | undefined>;

/** Parses `argv` (the words after the command name) against `spec`; no positionals allowed. */
export function parseFlags(command: string, argv: string[], spec: FlagSpec): FlagValues {
  try {
    const { values } = parseArgs({ args: argv, options: spec, strict: true, allowPositionals: false });
    return values as FlagValues;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new UsageError(`${command}: ${message}`);
  }
}

export function optionalString(values: FlagValues, name: string): string | undefined {
  const value = values[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') {
    throw new UsageError(`--${name} needs a value`);
  }
  return value;
}

export function requiredString(values: FlagValues, name: string): string {
  const value = optionalString(values, name);
  if (value === undefined) throw new UsageError(`missing required flag --${name}`);
  return value;
}

/** An integer flag in [min, max]; decimal digits only, so `1e3` or `12abc` are refused. */
export function optionalInteger(
  values: FlagValues,
  name: string,
  range: { min: number; max?: number },
): number | undefined {
  const text = optionalString(values, name);
  if (text === undefined) return undefined;
  return parseIntegerText(text, `--${name}`, range);
}

export function parseIntegerText(text: string, label: string, range: { min: number; max?: number }): number {
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  if (!/^-?\d+$/.test(text.trim())) {
    throw new UsageError(`${label} must be an integer, got '${text}'`);
  }
  const value = Number(text.trim());
  if (!Number.isSafeInteger(value) || value < range.min || value > max) {
    const upper = range.max === undefined ? '' : ` and <= ${range.max}`;
    throw new UsageError(`${label} must be an integer >= ${range.min}${upper}, got '${text}'`);
  }
  return value;
}

export function optionalByteSize(values: FlagValues, name: string): number | undefined {
  const text = optionalString(values, name);
  if (text === undefined) return undefined;
  try {
    return parseByteSize(text);
  } catch (error) {
    if (error instanceof ByteSizeError) throw new UsageError(`--${name}: ${error.message}`);
    throw error;
  }
}

/** A string flag restricted to a fixed set of choices. */
export function optionalChoice<T extends string>(
  values: FlagValues,
  name: string,
  choices: readonly T[],
): T | undefined {
  const text = optionalString(values, name);
  if (text === undefined) return undefined;
  if (!(choices as readonly string[]).includes(text)) {
    throw new UsageError(`--${name} must be one of ${choices.join(', ')}, got '${text}'`);
  }
  return text as T;
}
