import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { randomInt, seededRandom } from '../test/random.ts';
import { sampleMessages } from '../test/sample-messages.ts';
import { decodeFrame } from './codec.ts';
import { msgpackClaimsFit } from './msgpack-prescan.ts';

const packr = new Packr({ useRecords: false });

describe('msgpackClaimsFit', () => {
  it('accepts every packed sample header and a spread of value kinds', () => {
    const random = seededRandom(Math.floor(Math.random() * 2 ** 31));
    for (const { message } of sampleMessages(random))
      expect(msgpackClaimsFit(packr.pack(message))).toBeUndefined();
    const values: unknown[] = [
      null,
      true,
      -1,
      -33,
      255,
      65_536,
      2 ** 40,
      -(2 ** 40),
      1.5,
      'x'.repeat(40),
      'y'.repeat(300),
      'z'.repeat(70_000),
      new Uint8Array(300),
      Array.from({ length: 20 }, (_, i) => i),
      Array.from({ length: 70_000 }, () => 0),
      Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, { a: [i, 'v'] }])),
    ];
    for (const value of values) expect(msgpackClaimsFit(packr.pack(value))).toBeUndefined();
  });

  it('rejects containers claiming more elements than bytes remain, cheaply', () => {
    // array32 of 16.6 million elements in a 9-byte header: msgpackr alone allocates them all.
    const claim = Uint8Array.from([0x91, 0xdd, 0x00, 0xfd, 0xf4, 0xd3, 0x01, 0x02, 0x03]);
    expect(msgpackClaimsFit(claim)).toMatch(/announces \d+ more values/);
    expect(msgpackClaimsFit(Uint8Array.from([0xdf, 0xff, 0xff, 0xff, 0xff]))).toMatch(/announces/);
    expect(msgpackClaimsFit(Uint8Array.from([0xdb, 0x7f, 0xff, 0xff, 0xff, 0x61]))).toMatch(
      /runs past the end/,
    );
    expect(msgpackClaimsFit(Uint8Array.from([0x92, 0x01]))).toMatch(/announces 2 more values but only 1/);
    expect(msgpackClaimsFit(Uint8Array.from([0xd9, 0x05, 0x61]))).toMatch(/runs past the end/);
    // Decoding the claim for real would allocate billions of slots (seconds, or out of memory);
    // the bound is loose so that a loaded CI core or a GC pause cannot fail it.
    const started = performance.now();
    const result = decodeFrame(Uint8Array.from([claim.length, 0, 0, 0, ...claim]));
    expect(performance.now() - started).toBeLessThan(1000);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.code).toBe('badHeader');
  });

  it('never rejects what msgpackr can unpack from random bytes', () => {
    const random = seededRandom(Math.floor(Math.random() * 2 ** 31));
    const unpackr = new Packr({ useRecords: false, mapsAsObjects: true });
    for (let i = 0; i < 5000; i++) {
      const bytes = Uint8Array.from({ length: randomInt(random, 24) + 1 }, () => randomInt(random, 256));
      let isUnpacked = true;
      try {
        unpackr.unpack(bytes);
      } catch {
        isUnpacked = false;
      }
      if (isUnpacked) expect(msgpackClaimsFit(bytes), Buffer.from(bytes).toString('hex')).toBeUndefined();
    }
  });
});
