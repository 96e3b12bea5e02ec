import { describe, expect, it } from 'vitest';
import {
  optionalByteSize,
  optionalChoice,
  optionalInteger,
  parseFlags,
  requiredString,
  UsageError,
} from './args.ts';

const SPEC = { model: { type: 'string' }, threads: { type: 'string' }, kv: { type: 'string' } } as const;

describe('flag parsing', () => {
  it('parses known flags in both --flag value and --flag=value forms', () => {
    const values = parseFlags('run', ['--model', 'dir', '--threads=4'], SPEC);
    expect(requiredString(values, 'model')).toBe('dir');
    expect(optionalInteger(values, 'threads', { min: 1 })).toBe(4);
  });

  it('turns unknown flags, positionals and missing values into UsageError naming the command', () => {
    expect(() => parseFlags('run', ['--modle', 'x'], SPEC)).toThrow(UsageError);
    expect(() => parseFlags('run', ['--modle', 'x'], SPEC)).toThrow(/^run: .*--modle/);
    expect(() => parseFlags('run', ['stray'], SPEC)).toThrow(UsageError);
    expect(() => parseFlags('run', ['--model'], SPEC)).toThrow(UsageError);
  });

  it('requires flags and checks integer ranges and formats', () => {
    const values = parseFlags('run', ['--threads', '0'], SPEC);
    expect(() => requiredString(values, 'model')).toThrow('missing required flag --model');
    expect(() => optionalInteger(values, 'threads', { min: 1 })).toThrow('--threads must be an integer >= 1');
    for (const bad of ['1.5', '1e3', '12abc', '']) {
      const v = parseFlags('run', [`--threads=${bad}`], SPEC);
      expect(() => optionalInteger(v, 'threads', { min: 1 })).toThrow(UsageError);
    }
    const big = parseFlags('run', ['--threads', '2000'], SPEC);
    expect(() => optionalInteger(big, 'threads', { min: 1, max: 1024 })).toThrow('and <= 1024');
  });

  it('reads byte sizes and choices with the flag named in errors', () => {
    expect(optionalByteSize(parseFlags('run', ['--kv', '2GiB'], SPEC), 'kv')).toBe(2 * 1024 ** 3);
    expect(() => optionalByteSize(parseFlags('run', ['--kv', '2GB'], SPEC), 'kv')).toThrow(
      /^--kv: invalid size/,
    );
    const values = parseFlags('run', ['--model', 'huge'], SPEC);
    expect(() => optionalChoice(values, 'model', ['tiny', 'small'])).toThrow(
      "--model must be one of tiny, small, got 'huge'",
    );
    expect(optionalChoice(values, 'threads', ['a'])).toBeUndefined();
  });
});
