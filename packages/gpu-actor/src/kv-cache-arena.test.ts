import { join } from 'node:path';
import { loadModelConfig } from '@seesaw/model';
import { describe, expect, it } from 'vitest';
import { KvCacheArena } from './kv-cache-arena.ts';
import { PagedKvCache } from './paged-kv-cache.ts';

const FIXTURE = join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16');

describe('KvCacheArena', () => {
  it('hands every later cache the same bytes, growing only for a larger one', () => {
    const arena = new KvCacheArena();
    const first = arena.take(1000);
    expect(arena.take(600)).toBe(first);
    expect(arena.take(1000)).toBe(first);
    const grown = arena.take(1001);
    expect(grown).not.toBe(first);
    expect(arena.take(10)).toBe(grown);
    expect(arena.numBytes).toBe(1001);
    expect(arena.numAllocations).toBe(2);
  });

  it('reserves bytes up front: a later take within them does not grow the arena', () => {
    const arena = new KvCacheArena();
    arena.reserve(2000);
    const first = arena.take(1000);
    expect(first.byteLength).toBe(2000);
    expect(arena.take(2000)).toBe(first);
    arena.reserve(1500);
    expect(arena.numAllocations).toBe(1);
    expect(arena.take(2001)).not.toBe(first);
    expect(arena.numAllocations).toBe(2);
  });

  it('refuses a size that is not a positive whole number of bytes', () => {
    for (const bad of [0, -1, 1.5, Number.NaN])
      expect(() => new KvCacheArena().take(bad)).toThrow(/positive whole/);
    expect(() => new KvCacheArena().reserve(-5)).toThrow(/positive whole/);
  });

  it('lets a re-shard view its caches of both layouts from one allocation', () => {
    const config = loadModelConfig(FIXTURE);
    const arena = new KvCacheArena();
    // A P2 stage: half the layers, every KV head; a T2 rank: every layer, half the KV heads.
    const stage = { ...config, numLayers: config.numLayers / 2 };
    const rank = { ...config, numKvHeads: config.numKvHeads / 2 };
    const p2 = new PagedKvCache(stage, 8, 16, 'f32', arena);
    const bytes = p2.numBytes;
    const t2 = new PagedKvCache(rank, 8, 16, 'f32', arena);
    expect(t2.numBytes).toBe(bytes);
    expect(arena.numAllocations).toBe(1);
    expect(arena.numBytes).toBe(bytes);
    const arrays = [...t2.keys, ...t2.values];
    expect(arrays.every((array) => array.buffer === p2.keys[0]!.buffer)).toBe(true);
    // No two of a cache's arrays overlap: they tile the arena.
    const starts = arrays.map((array) => array.byteOffset).sort((a, b) => a - b);
    expect(starts).toEqual(arrays.map((_, i) => i * arrays[0]!.byteLength));
    const fresh = new PagedKvCache(rank, 8, 16);
    expect(fresh.keys[0]!.buffer).not.toBe(p2.keys[0]!.buffer);
  });

  it('views a 16-bit cache from the same bytes: twice the blocks, 16-bit arrays', () => {
    const config = loadModelConfig(FIXTURE);
    const arena = new KvCacheArena();
    const f32 = new PagedKvCache(config, 8, 16, 'f32', arena);
    const bf16 = new PagedKvCache(config, 16, 16, 'bf16', arena);
    expect(bf16.numBytes).toBe(f32.numBytes);
    expect(arena.numAllocations).toBe(1);
    expect(bf16.keys[0]).toBeInstanceOf(Uint16Array);
    expect(bf16.values.at(-1)!.byteOffset + bf16.values.at(-1)!.byteLength).toBe(arena.numBytes);
  });
});
