import { describe, expect, it } from 'vitest';
import { ByteSizeError, formatByteSize, parseByteSize } from './byte-size.ts';

describe('parseByteSize', () => {
  it('reads every binary unit, case-insensitively, with optional space and fractions', () => {
    expect(parseByteSize('4096')).toBe(4096);
    expect(parseByteSize('4096B')).toBe(4096);
    expect(parseByteSize('64KiB')).toBe(64 * 1024);
    expect(parseByteSize('512 MiB')).toBe(512 * 1024 ** 2);
    expect(parseByteSize('1GiB')).toBe(1024 ** 3);
    expect(parseByteSize('1gib')).toBe(1024 ** 3);
    expect(parseByteSize('1.5GiB')).toBe(1.5 * 1024 ** 3);
    expect(parseByteSize('2TiB')).toBe(2 * 1024 ** 4);
    expect(parseByteSize(' 3MiB ')).toBe(3 * 1024 ** 2);
  });

  it('rounds fractional bytes down', () => {
    expect(parseByteSize('1.0001KiB')).toBe(1024);
  });

  it.each([
    ['', /expected a number/],
    ['abc', /expected a number/],
    ['-1GiB', /expected a number/],
    ['1e9', /expected a number/],
    ['1GB', /unknown unit 'GB'/],
    ['10 MB', /unknown unit 'MB'/],
    ['1 GiB extra', /expected a number/],
    ['0', /more than 0 bytes/],
    ['0.1B', /more than 0 bytes/],
    ['99999999999TiB', /too large/],
  ])('refuses %j', (text, message) => {
    expect(() => parseByteSize(text)).toThrow(ByteSizeError);
    expect(() => parseByteSize(text)).toThrow(message);
  });
});

describe('formatByteSize', () => {
  it('uses the largest unit that keeps the value >= 1', () => {
    expect(formatByteSize(512)).toBe('512 B');
    expect(formatByteSize(1536)).toBe('1.50 KiB');
    expect(formatByteSize(250 * 1024 ** 2)).toBe('250.00 MiB');
    expect(formatByteSize(3 * 1024 ** 3)).toBe('3.00 GiB');
  });
});
