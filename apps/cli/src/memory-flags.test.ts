/** Issue 13 item 11: memory flags checked against the machine's memory, with clear errors. */
import { describe, expect, it } from 'vitest';
import { parseByteSize } from './byte-size.ts';
import { readEngineSettings } from './commands/run.ts';
import { checkMemoryFlags } from './memory-flags.ts';

const GiB = 1024 ** 3;

describe('memory flags', () => {
  it('item 11: refuses a KV cache larger than a 23 GiB machine, naming the flag and the sizes', () => {
    expect(() => checkMemoryFlags({ kvCacheBytes: 64 * GiB }, 23 * GiB)).toThrow(
      /--kv-cache-memory 64\.00 GiB is more than this machine can hold: it has 23\.00 GiB/,
    );
    expect(() => checkMemoryFlags({ kvCacheBytes: 12 * GiB, hostKvBytes: 12 * GiB }, 23 * GiB)).toThrow(
      /plus --host-kv-memory \(24\.00 GiB\)/,
    );
    expect(() => checkMemoryFlags({ kvCacheBytes: 8 * GiB, hostKvBytes: 8 * GiB }, 23 * GiB)).not.toThrow();
  });

  it('item 11: refuses a 1-byte host KV tier', () => {
    expect(() => checkMemoryFlags({ hostKvBytes: parseByteSize('1B') }, 23 * GiB)).toThrow(
      /--host-kv-memory 1 B is too small/,
    );
  });

  it('item 11: run refuses 2000GiB on this machine with a usage error, not a typed-array failure', () => {
    const values = { model: 'm', input: 'i', output: 'o', 'kv-cache-memory': '2000GiB' };
    expect(() => readEngineSettings(values)).toThrow(/--kv-cache-memory 1\.95 TiB is more than this machine/);
    expect(() =>
      readEngineSettings({ ...values, 'kv-cache-memory': '1MiB', 'host-kv-memory': '1B' }),
    ).toThrow(/--host-kv-memory 1 B is too small/);
  });
});
