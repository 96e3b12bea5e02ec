/**
 * The bytes a device worker's KV cache lives in, kept across re-shards: a switch re-views them
 * for the new layout's layers x KV heads instead of allocating a fresh cache. A fresh cache of a
 * few hundred MiB costs its page faults and zeroing on every switch, and the old one's release to
 * the GC; re-viewing costs nothing. The arena only grows (to the largest cache either layout has
 * asked for, so after one round trip both fit), and it deals in bytes: whatever element type
 * the cache views them as is the cache's business.
 *
 * The bytes are a SharedArrayBuffer: a device worker shares them with its host's kv-store thread
 * (KvStoreSwapper.shareCache), which then copies KV between its slots and the cache's blocks
 * directly, once per direction, instead of the device gathering a frame for every swap.
 *
 * Contents are not cleared between owners: attention reads a sequence's keys and values only up
 * to its context length, all of which the new owner writes (or prefetches) before reading.
 */
export class KvCacheArena {
  private buffer: SharedArrayBuffer | undefined;
  private grows = 0;

  /**
   * `numBytes` of the arena for a new cache, every earlier view's bytes with it: the previous
   * owner must be done with them (a re-shard retires the old device first).
   */
  take(numBytes: number): SharedArrayBuffer {
    this.reserve(numBytes);
    return this.buffer!;
  }

  /**
   * Grows the arena to at least `numBytes` now, without handing them out: a Seesaw device reserves
   * the larger of its two layouts' caches at load, so no switch grows it. Page contents are not
   * touched here (a fresh buffer's pages are mapped when first written).
   */
  reserve(numBytes: number): void {
    if (!Number.isInteger(numBytes) || numBytes <= 0)
      throw new RangeError(`a KV cache arena hands out a positive whole number of bytes, not ${numBytes}`);
    if (!this.buffer || this.buffer.byteLength < numBytes) {
      this.buffer = undefined; // let the smaller one go before the larger one is allocated
      this.buffer = new SharedArrayBuffer(numBytes);
      this.grows++;
    }
  }

  /** Whether `buffer` is the arena's bytes (a cache viewed from it, not a fresh one). */
  holds(buffer: ArrayBufferLike | undefined): boolean {
    return buffer !== undefined && buffer === this.buffer;
  }

  /** Bytes allocated (the largest cache asked for so far). */
  get numBytes(): number {
    return this.buffer?.byteLength ?? 0;
  }

  /** How many times the arena allocated: 1 when every cache fitted the first one. */
  get numAllocations(): number {
    return this.grows;
  }
}
