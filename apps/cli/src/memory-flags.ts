/**
 * Memory sizes given on the command line (--kv-cache-memory, --host-kv-memory) checked against
 * the machine before anything is allocated: a size this machine cannot hold fails with a clear
 * error instead of swapping, a V8 'Invalid typed array length', or an OOM kill later; a size too
 * small to hold a KV block is refused instead of silently giving a useless tier.
 */
import { totalmem } from 'node:os';
import { UsageError } from './args.ts';
import { formatByteSize } from './byte-size.ts';

/** Smallest memory flag accepted: below this no KV block of any real model fits. */
export const MIN_MEMORY_FLAG_BYTES = 64 * 1024;
/** Share of the machine's memory the flags may ask for together (the rest: weights, runtime, OS). */
export const MAX_MEMORY_SHARE = 0.9;

export interface MemoryFlags {
  kvCacheBytes?: number;
  hostKvBytes?: number;
}

/** Throws a UsageError naming the flag when a size is too small or more than this machine has. */
export function checkMemoryFlags(flags: MemoryFlags, machineBytes = totalmem()): void {
  const limit = Math.floor(machineBytes * MAX_MEMORY_SHARE);
  const given: Array<[string, number]> = [];
  if (flags.kvCacheBytes !== undefined) given.push(['--kv-cache-memory', flags.kvCacheBytes]);
  if (flags.hostKvBytes !== undefined) given.push(['--host-kv-memory', flags.hostKvBytes]);
  for (const [name, bytes] of given) {
    if (bytes < MIN_MEMORY_FLAG_BYTES) {
      throw new UsageError(
        `${name} ${bytes} B is too small: at least ${formatByteSize(MIN_MEMORY_FLAG_BYTES)}`,
      );
    }
    if (bytes > limit) {
      throw new UsageError(
        `${name} ${formatByteSize(bytes)} is more than this machine can hold: it has ` +
          `${formatByteSize(machineBytes)} of memory, at most ${formatByteSize(limit)} may be asked for`,
      );
    }
  }
  const total = given.reduce((sum, [, bytes]) => sum + bytes, 0);
  if (given.length > 1 && total > limit) {
    throw new UsageError(
      `--kv-cache-memory plus --host-kv-memory (${formatByteSize(total)}) is more than this machine can ` +
        `hold: at most ${formatByteSize(limit)} of its ${formatByteSize(machineBytes)}`,
    );
  }
}
