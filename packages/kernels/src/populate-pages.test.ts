import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { describe, expect, it } from 'vitest';
import { makeRng, testSeed } from '../test/test-support.ts';
import { populatePages } from './index.ts';

const rng = makeRng(testSeed());

/** MADV_POPULATE_WRITE is Linux 5.14's; older kernels answer false and callers touch pages themselves. */
function kernelCanPopulate(): boolean {
  const [major, minor] = release().split('.').map(Number);
  return process.platform === 'linux' && (major > 5 || (major === 5 && minor >= 14));
}

/** This process's resident memory, bytes. */
function residentBytes(): number {
  const line = readFileSync('/proc/self/status', 'utf8').match(/^VmRSS:\s+(\d+) kB$/m);
  if (!line) throw new Error('no VmRSS in /proc/self/status');
  return Number(line[1]) * 1024;
}

describe('populatePages', () => {
  it('changes no byte of any range, aligned or not, of shared and unshared memory', () => {
    for (const buffer of [new SharedArrayBuffer(3 << 20), new ArrayBuffer(3 << 20)]) {
      const bytes = new Uint8Array(buffer);
      for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rng() * 256);
      const before = bytes.slice();
      for (let trial = 0; trial < 20; trial++) {
        const start = Math.floor(rng() * bytes.length);
        const end = start + Math.floor(rng() * (bytes.length - start + 1));
        expect(populatePages(bytes, start, end)).toBe(start === end || kernelCanPopulate());
      }
      expect(populatePages(bytes, 0, bytes.length)).toBe(kernelCanPopulate());
      expect(Buffer.compare(bytes, before)).toBe(0);
    }
  });

  it.runIf(kernelCanPopulate() && process.platform === 'linux')(
    "maps a fresh buffer's pages: resident memory grows by the range",
    () => {
      const numBytes = 64 << 20;
      const bytes = new Uint8Array(new SharedArrayBuffer(numBytes));
      const before = residentBytes();
      expect(populatePages(bytes, 4096 + 17, numBytes - 3)).toBe(true);
      expect(residentBytes() - before).toBeGreaterThan(numBytes * 0.9);
      expect(bytes[12345]).toBe(0);
    },
  );

  it('refuses a range outside the array', () => {
    const bytes = new Uint8Array(8192);
    expect(populatePages(bytes, 5, 5)).toBe(true);
    expect(() => populatePages(bytes, 10, 8193)).toThrow(/within the array/);
    expect(() => populatePages(bytes, 11, 10)).toThrow(/within the array/);
  });
});
