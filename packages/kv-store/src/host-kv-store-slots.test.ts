import { Xoshiro128 } from '@seesaw/model';
import { describe, expect, it } from 'vitest';
import { isBitIdentical, randomBits, randomInt, randomRange, referenceBox } from '../test/test-support.ts';
import { boxShape, type HostKvLayout, type KvSliceBox, slotBytes } from './host-kv-layout.ts';
import { HostKvStore } from './host-kv-store.ts';

// Explicit slot ids (the coordinator's scheduler as the slot authority): several writers put
// disjoint head / layer boxes of one sequence into slots the store never reserved itself.

const LAYOUT: HostKvLayout = { numLayers: 4, numKvHeads: 4, headDim: 8, tokensPerSlot: 4, dtype: 'f32' };
const NUM_SLOTS = 16;

function store(): HostKvStore {
  return new HostKvStore({ layout: LAYOUT, capacityBytes: NUM_SLOTS * slotBytes(LAYOUT) });
}

function f32(shape: number[], data: Float32Array) {
  return { dtype: 'f32' as const, shape, data };
}

describe('HostKvStore with explicit slot ids', () => {
  it('round-trips boxes put by layer x head owners into scattered slots, bit-exactly', () => {
    const rng = new Xoshiro128(11);
    const s = store();
    const { numLayers: L, numKvHeads: H, headDim: D } = LAYOUT;
    const numTokens = 13;
    const slotIds = [9, 2, 14, 5];
    const full = randomBits(rng, L * 2 * H * numTokens * D);
    // Two pipeline stages x two TP ranks, each writing its own box.
    for (const layers of [
      { start: 0, end: 2 },
      { start: 2, end: 4 },
    ]) {
      for (const heads of [
        { start: 0, end: 2 },
        { start: 2, end: 4 },
      ]) {
        const b: KvSliceBox = { seqId: 3, layers, heads, tokens: { start: 0, end: numTokens }, slotIds };
        expect(s.put(b, f32(boxShape(b, D), referenceBox(full, [L, H, numTokens, D], b)))).toEqual({
          ok: true,
        });
      }
    }
    expect(s.numFreeSlots).toBe(NUM_SLOTS);
    for (let i = 0; i < 100; i++) {
      const b: KvSliceBox = {
        seqId: 3,
        layers: randomRange(rng, L),
        heads: randomRange(rng, H),
        tokens: randomRange(rng, numTokens),
        slotIds,
      };
      const got = s.get(b);
      if (!got.ok) throw new Error(got.reason);
      expect(
        isBitIdentical(got.tensor.data as Float32Array, referenceBox(full, [L, H, numTokens, D], b)),
      ).toBe(true);
    }
    // The same data under other slot ids is not there.
    const elsewhere = s.get({
      seqId: 3,
      layers: { start: 0, end: 1 },
      heads: { start: 0, end: 1 },
      tokens: { start: 0, end: 1 },
      slotIds: [randomInt(rng, 2) === 0 ? 0 : 1],
    });
    expect(elsewhere.ok).toBe(false);
  });

  it('refuses bad slot ids and boxes past the given slots', () => {
    const s = store();
    const base = { seqId: 1, layers: { start: 0, end: 1 }, heads: { start: 0, end: 1 } };
    const data = (tokens: number) => f32([1, 2, 1, tokens, 8], new Float32Array(2 * tokens * 8));
    const cases: Array<[number[], number, RegExp]> = [
      [[NUM_SLOTS], 1, /not one of the store's 16 slots/],
      [[-1], 1, /not one of/],
      [[1.5], 1, /not one of/],
      [[3, 3], 5, /repeat a slot/],
      [[], 1, /non-empty/],
      [[4], 5, /tokens/],
    ];
    for (const [slotIds, tokens, reason] of cases) {
      const result = s.put({ ...base, tokens: { start: 0, end: tokens }, slotIds }, data(tokens));
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.reason).toMatch(reason);
    }
    const unwritten = s.get({ ...base, tokens: { start: 0, end: 2 }, slotIds: [7] });
    expect(unwritten.ok).toBe(false);
    if (!unwritten.ok) expect(unwritten.reason).toMatch(/never written/);
  });
});
