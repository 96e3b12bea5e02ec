import { join } from 'node:path';
import { loadModelConfig, Xoshiro128 } from '@seesaw/model';
import { describe, expect, it } from 'vitest';
import { isBitIdentical, randomBits, randomInt, randomRange, referenceBox } from '../test/test-support.ts';
import type { HostKvLayout, KvSliceBox } from './host-kv-layout.ts';
import { boxShape, hostKvLayoutFor, slotBytes } from './host-kv-layout.ts';
import { HostKvStore } from './host-kv-store.ts';

const LAYOUT: HostKvLayout = { numLayers: 3, numKvHeads: 4, headDim: 8, tokensPerSlot: 4, dtype: 'f32' };

function store(numSlots: number, layout = LAYOUT): HostKvStore {
  return new HostKvStore({ layout, capacityBytes: numSlots * slotBytes(layout) });
}

function box(
  seqId: number,
  layers: [number, number],
  heads: [number, number],
  tokens: [number, number],
): KvSliceBox {
  return {
    seqId,
    layers: { start: layers[0], end: layers[1] },
    heads: { start: heads[0], end: heads[1] },
    tokens: { start: tokens[0], end: tokens[1] },
  };
}

function f32(shape: number[], data: Float32Array) {
  return { dtype: 'f32' as const, shape, data };
}

/** A whole sequence's KV [L][2][H][T][D] of random bits, put into the store in random boxes. */
function putWholeSequence(s: HostKvStore, rng: Xoshiro128, seqId: number, numTokens: number): Float32Array {
  const { numLayers: L, numKvHeads: H, headDim: D } = s.layout;
  const full = randomBits(rng, L * 2 * H * numTokens * D);
  // Tile the (layer, head, token) space with boxes of random sizes: a TP rank writes its
  // heads, a pipeline stage its layers, prefill its token chunks.
  for (let l = 0; l < L; ) {
    const lEnd = Math.min(L, l + 1 + randomInt(rng, 2));
    for (let h = 0; h < H; ) {
      const hEnd = Math.min(H, h + 1 + randomInt(rng, 3));
      for (let t = 0; t < numTokens; ) {
        const tEnd = Math.min(numTokens, t + 1 + randomInt(rng, 9));
        const b = box(seqId, [l, lEnd], [h, hEnd], [t, tEnd]);
        const result = s.put(b, f32(boxShape(b, D), referenceBox(full, [L, H, numTokens, D], b)));
        expect(result).toEqual({ ok: true });
        t = tEnd;
      }
      h = hEnd;
    }
    l = lEnd;
  }
  return full;
}

describe('HostKvStore', () => {
  it('round-trips random sub-boxes bit-exactly across several sequences', () => {
    const rng = new Xoshiro128(1);
    const s = store(40);
    const lengths = [13, 4, 29, 1];
    const fulls = lengths.map((n, seq) => {
      expect(s.reserve(seq, Math.ceil(n / 4)).ok).toBe(true);
      return putWholeSequence(s, rng, seq, n);
    });
    const { numLayers: L, numKvHeads: H, headDim: D } = LAYOUT;
    for (let i = 0; i < 300; i++) {
      const seq = randomInt(rng, lengths.length);
      const n = lengths[seq]!;
      const b: KvSliceBox = {
        seqId: seq,
        layers: randomRange(rng, L),
        heads: randomRange(rng, H),
        tokens: randomRange(rng, n),
      };
      const got = s.get(b);
      if (!got.ok) throw new Error(got.reason);
      expect(got.tensor.shape).toEqual(boxShape(b, D));
      expect(
        isBitIdentical(got.tensor.data as Float32Array, referenceBox(fulls[seq]!, [L, H, n, D], b)),
      ).toBe(true);
    }
  });

  it('overwrites in place and reads into a caller buffer', () => {
    const rng = new Xoshiro128(2);
    const s = store(4);
    s.reserve(9, 3);
    const full = putWholeSequence(s, rng, 9, 10);
    const patch = box(9, [1, 2], [2, 4], [3, 9]);
    const patchData = randomBits(rng, 1 * 2 * 2 * 6 * 8);
    expect(s.put(patch, f32(boxShape(patch, 8), patchData)).ok).toBe(true);
    const out = new Float32Array(patchData.length);
    const got = s.get(patch, out);
    expect(got.ok && got.tensor.data).toBe(out);
    expect(isBitIdentical(out, patchData)).toBe(true);
    // Everything outside the patch is unchanged.
    const before = box(9, [0, 1], [0, 4], [0, 10]);
    const still = s.get(before);
    expect(
      still.ok &&
        isBitIdentical(still.tensor.data as Float32Array, referenceBox(full, [3, 4, 10, 8], before)),
    ).toBe(true);
  });

  it('stores bf16 as bit patterns', () => {
    const layout: HostKvLayout = { ...LAYOUT, dtype: 'bf16' };
    const rng = new Xoshiro128(3);
    const s = store(8, layout);
    s.reserve(0, 2);
    const b = box(0, [0, 3], [1, 3], [2, 7]);
    const data = new Uint16Array(3 * 2 * 2 * 5 * 8).map(() => rng.nextU32() & 0xffff);
    expect(s.put(b, { dtype: 'bf16', shape: boxShape(b, 8), data }).ok).toBe(true);
    const got = s.get(b);
    expect(got.ok && got.tensor.dtype).toBe('bf16');
    expect(got.ok && isBitIdentical(got.tensor.data as Uint16Array, data)).toBe(true);
    const wrong = s.put(b, f32(boxShape(b, 8), new Float32Array(data.length)));
    expect(wrong).toEqual({ ok: false, reason: 'tensor dtype f32, store holds bf16' });
  });

  it('answers bad requests with error values', () => {
    const s = store(3);
    s.reserve(1, 2); // 8 tokens
    const good = box(1, [0, 1], [0, 1], [0, 2]);
    const data = f32(boxShape(good, 8), new Float32Array(2 * 2 * 8));
    const reasonOf = (r: { ok: boolean; reason?: string }) => (r.ok ? 'ok' : r.reason);
    expect(reasonOf(s.put({ ...good, seqId: 2 }, data))).toBe('unknown sequence 2 (no slots reserved)');
    expect(reasonOf(s.put(box(1, [0, 4], [0, 1], [0, 2]), data))).toBe('layers [0, 4) outside [0, 3)');
    expect(reasonOf(s.put(box(1, [0, 1], [3, 5], [0, 2]), data))).toBe('heads [3, 5) outside [0, 4)');
    expect(reasonOf(s.put(box(1, [0, 1], [0, 1], [6, 9]), data))).toBe(
      'sequence 1 tokens [6, 9) outside [0, 8)',
    );
    expect(reasonOf(s.put(box(1, [1, 1], [0, 1], [0, 2]), data))).toBe('layers [1, 1) is empty');
    expect(reasonOf(s.put(good, f32([1, 2, 1, 2, 4], new Float32Array(16))))).toBe(
      'tensor shape [1,2,1,2,4], box needs [1,2,1,2,8]',
    );
    expect(reasonOf(s.put(good, { dtype: 'f32', shape: boxShape(good, 8), data: new Float32Array(3) }))).toBe(
      'tensor data is not 32 f32 elements',
    );
    expect(reasonOf(s.get(good))).toBe('sequence 1 layer 0 K head 0 token 0 was never written');
    expect(s.put(good, data).ok).toBe(true);
    expect(reasonOf(s.get(box(1, [0, 1], [0, 1], [0, 3])))).toBe(
      'sequence 1 layer 0 K head 0 token 2 was never written',
    );
    expect(reasonOf(s.get(good, new Float32Array(5)))).toBe('output buffer must be 32 f32 elements');
    expect(s.reserve(3, 2).ok).toBe(false);
    expect(s.numFreeSlots).toBe(1);
  });

  it('reports exactly the unwritten element a get touches, over random put patterns', () => {
    const rng = new Xoshiro128(6);
    const layout: HostKvLayout = { numLayers: 2, numKvHeads: 3, headDim: 2, tokensPerSlot: 16, dtype: 'f32' };
    for (let trial = 0; trial < 20; trial++) {
      const s = store(4, layout);
      const numTokens = 1 + randomInt(rng, 64);
      s.reserve(0, Math.ceil(numTokens / 16));
      // written[l][h][t] (K and V are always put together).
      const written = new Uint8Array(2 * 3 * numTokens);
      for (let p = 0; p < 4; p++) {
        const b: KvSliceBox = {
          seqId: 0,
          layers: randomRange(rng, 2),
          heads: randomRange(rng, 3),
          tokens: randomRange(rng, numTokens),
        };
        const shape = boxShape(b, 2);
        expect(s.put(b, f32(shape, new Float32Array(shape.reduce((x, y) => x * y))))).toEqual({ ok: true });
        for (let l = b.layers.start; l < b.layers.end; l++)
          for (let h = b.heads.start; h < b.heads.end; h++)
            for (let t = b.tokens.start; t < b.tokens.end; t++) written[(l * 3 + h) * numTokens + t] = 1;
      }
      for (let g = 0; g < 40; g++) {
        const b: KvSliceBox = {
          seqId: 0,
          layers: randomRange(rng, 2),
          heads: randomRange(rng, 3),
          tokens: randomRange(rng, numTokens),
        };
        let expected = 'ok';
        search: for (let l = b.layers.start; l < b.layers.end; l++)
          for (const kv of ['K', 'V'])
            for (let h = b.heads.start; h < b.heads.end; h++)
              for (let t = b.tokens.start; t < b.tokens.end; t++)
                if (!written[(l * 3 + h) * numTokens + t]) {
                  expected = `sequence 0 layer ${l} ${kv} head ${h} token ${t} was never written`;
                  break search;
                }
        const got = s.get(b);
        expect(got.ok ? 'ok' : got.reason).toBe(expected);
      }
    }
  });

  it('a released slot given to another sequence reads as unwritten, not as old data', () => {
    const rng = new Xoshiro128(4);
    const s = store(2);
    s.reserve(1, 2);
    putWholeSequence(s, rng, 1, 8);
    s.release(1);
    s.reserve(2, 1);
    const b = box(2, [0, 3], [0, 4], [0, 4]);
    expect(s.get(b).ok).toBe(false);
  });

  it('allocates arena memory only when slots are first written', () => {
    const layout: HostKvLayout = {
      numLayers: 32,
      numKvHeads: 8,
      headDim: 128,
      tokensPerSlot: 16,
      dtype: 'bf16',
    };
    const s = new HostKvStore({ layout, capacityBytes: 64 * 1024 ** 3 });
    expect(s.slotBytes).toBe(32 * 2 * 8 * 16 * 128 * 2);
    expect(s.numSlots).toBe(Math.floor((64 * 1024 ** 3) / s.slotBytes));
    expect(s.numResidentBytes).toBe(0);
    s.reserve(0, 1);
    const b = box(0, [0, 1], [0, 1], [0, 1]);
    expect(s.put(b, { dtype: 'bf16', shape: boxShape(b, 128), data: new Uint16Array(2 * 128) }).ok).toBe(
      true,
    );
    expect(s.numResidentBytes).toBeGreaterThan(0);
    expect(s.numResidentBytes).toBeLessThanOrEqual(256 * 1024 ** 2);
  });

  it('takes its geometry from a real checkpoint config', () => {
    const config = loadModelConfig(join(import.meta.dirname, '../../../fixtures/tiny-llama-bf16'));
    const layout = hostKvLayoutFor(config, 16);
    expect(layout).toEqual({ numLayers: 4, numKvHeads: 4, headDim: 32, tokensPerSlot: 16, dtype: 'f32' });
    const s = new HostKvStore({ layout, capacityBytes: 2 * 1024 ** 3 });
    // 4 layers x K/V x 4 heads x 16 tokens x 32 dims x 4 bytes.
    expect(s.slotBytes).toBe(65_536);
    expect(s.numSlots).toBe(32_768);
  });
});
