import { Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { randomInt, seededRandom } from '../test/random.ts';
import { rawFrame } from '../test/raw-frames.ts';
import { sampleMessages } from '../test/sample-messages.ts';
import { decodeFrame, encodeFrame } from './codec.ts';

const random = seededRandom(20261127);
const valid = sampleMessages(random).map((s) => encodeFrame(s.message, s.tensors));
const unpackr = new Unpackr({ useRecords: false });

function randomBytes(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => randomInt(random, 256));
}

function pick<T>(items: readonly T[]): T {
  return items[randomInt(random, items.length)]!;
}

/** Byte-level mutations of a valid frame. */
function mutateBytes(frame: Uint8Array): Uint8Array {
  const out = frame.slice();
  switch (randomInt(random, 6)) {
    case 0: // flip a few bits
      for (let i = randomInt(random, 4) + 1; i > 0; i--)
        out[randomInt(random, out.length)]! ^= 1 << randomInt(random, 8);
      return out;
    case 1: // overwrite a byte with an interesting value
      out[randomInt(random, Math.min(out.length, 64))] = pick([0, 0x7f, 0x80, 0xc1, 0xff, 0xdd, 0xdf, 0xc6]);
      return out;
    case 2: // truncate
      return out.subarray(0, randomInt(random, out.length));
    case 3: // random header length
      new DataView(out.buffer).setUint32(
        0,
        pick([0, 1, out.length, 0xffff_ffff, randomInt(random, 2 ** 32)]),
        true,
      );
      return out;
    case 4: {
      // splice random bytes in
      const at = randomInt(random, out.length);
      const insert = randomBytes(randomInt(random, 16) + 1);
      const spliced = new Uint8Array(out.length + insert.length);
      spliced.set(out.subarray(0, at));
      spliced.set(insert, at);
      spliced.set(out.subarray(at), at + insert.length);
      return spliced;
    }
    default: // two frames' halves
      return new Uint8Array([...out.subarray(0, out.length >> 1), ...pick(valid).subarray(out.length >> 1)]);
  }
}

const WEIRD_VALUES: unknown[] = [
  null,
  -1,
  0.5,
  2 ** 53,
  -(2 ** 60),
  'x',
  '',
  [],
  [-1],
  {},
  { start: 5, end: 1 },
  true,
  Number.NaN,
  new Array(50).fill(7),
];

/** Structure-aware mutation: decode the header, change one field (maybe nested), re-frame. */
function mutateHeader(frame: Uint8Array): Uint8Array {
  const headerLength = new DataView(frame.buffer, frame.byteOffset).getUint32(0, true);
  const header = unpackr.unpack(frame.subarray(4, 4 + headerLength)) as Record<string, unknown>;
  let target: Record<string, unknown> = header;
  // Walk a random path into nested objects/arrays (batch.seqs[0]...).
  for (let depth = 0; depth < 3; depth++) {
    const keys = Object.keys(target);
    const key = pick(keys);
    const value = target[key];
    if (value && typeof value === 'object' && random() < 0.5) {
      const inner = Array.isArray(value) ? value[randomInt(random, value.length || 1)] : value;
      if (inner && typeof inner === 'object') target = inner as Record<string, unknown>;
      break;
    }
  }
  const keys = Object.keys(target);
  const key = random() < 0.1 ? 'surprise' : pick(keys);
  if (random() < 0.15) delete target[key];
  else target[key] = pick(WEIRD_VALUES);
  const payloadStart = Math.min(frame.length, Math.ceil((4 + headerLength) / 8) * 8);
  return rawFrame(header, frame.subarray(payloadStart));
}

function checkOne(frame: Uint8Array): boolean {
  const started = performance.now();
  const result = decodeFrame(frame);
  const elapsed = performance.now() - started;
  expect(elapsed).toBeLessThan(250);
  if (result.ok) {
    // Whatever passed validation must be a well-formed message that survives a round trip.
    expect(decodeFrame(encodeFrame(result.message, result.tensors)).ok).toBe(true);
  } else {
    expect(typeof result.error.code).toBe('string');
  }
  return result.ok;
}

describe('decodeFrame fuzz', () => {
  it('survives random bytes', () => {
    for (let i = 0; i < 3000; i++) {
      const bytes = randomBytes(randomInt(random, 200));
      // Half of them get a plausible header length so msgpack parsing is reached.
      if (bytes.length >= 4 && i % 2 === 0)
        new DataView(bytes.buffer).setUint32(0, bytes.length - 4 - randomInt(random, 4), true);
      checkOne(bytes);
    }
  });

  it('survives byte-mutated valid frames', () => {
    let accepted = 0;
    for (let i = 0; i < 6000; i++) if (checkOne(mutateBytes(pick(valid)))) accepted++;
    // Most mutations must be caught; some (a flipped tensor byte) are legitimately fine.
    expect(accepted).toBeLessThan(6000 * 0.5);
  });

  it('survives structure-mutated headers', () => {
    let rejected = 0;
    for (let i = 0; i < 4000; i++) if (!checkOne(mutateHeader(pick(valid)))) rejected++;
    expect(rejected).toBeGreaterThan(4000 * 0.5);
  });
});
