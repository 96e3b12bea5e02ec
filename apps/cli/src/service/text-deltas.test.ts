/**
 * TextDeltas on a byte tokenizer (one token per UTF-8 byte, decoded with TextDecoder): random
 * texts with 2-, 3- and 4-byte characters, streamed one token at a time, concatenate to exactly
 * the final text; no piece holds a replacement character for a split character, and no piece
 * reaches into a stop string.
 */
import { describe, expect, it } from 'vitest';
import { cutAtStopString } from '../stop-strings.ts';
import { TextDeltas } from './text-deltas.ts';

const decoder = new TextDecoder();
const decode = (ids: number[]) => decoder.decode(Uint8Array.from(ids));
const ALPHABET = ['a', 'b', ' ', 'é', 'ß', '€', '中', '🙂', 'x', '.'];

function randomText(random: () => number, length: number): string {
  return Array.from({ length }, () => ALPHABET[Math.floor(random() * ALPHABET.length)]).join('');
}

function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Streams `ids` token by token, then finishes with the record's text (stop strings cut). */
function stream(ids: number[], stops: string[], prefix = '') {
  const deltas = new TextDeltas(decode, stops, prefix);
  const pieces: string[] = [];
  for (let k = 1; k <= ids.length; k++) pieces.push(deltas.next(ids.slice(0, k)));
  const text = decode(ids);
  const cut = cutAtStopString(ids, text, stops, decode);
  const finalText = prefix + (cut?.text ?? text);
  pieces.push(deltas.finish(finalText));
  return { pieces, finalText };
}

describe('TextDeltas', () => {
  it('pieces concatenate to the final text and never split a UTF-8 character', () => {
    const seed = Date.now() % 1_000_000;
    console.log(`text-deltas seed ${seed}`);
    const random = mulberry32(seed);
    for (let trial = 0; trial < 200; trial++) {
      const ids = [...new TextEncoder().encode(randomText(random, 1 + Math.floor(random() * 30)))];
      const { pieces, finalText } = stream(ids, [], trial % 3 === 0 ? 'echo: ' : '');
      expect(pieces.join('')).toBe(finalText);
      for (const piece of pieces) expect(piece).not.toContain('\uFFFD');
      // Token by token: more than the final flush carries text for longer answers.
      if (ids.length > 12) expect(pieces.filter((piece) => piece !== '').length).toBeGreaterThan(1);
    }
  });

  it('with stop strings, the pieces stop before the stop string and equal the cut text', () => {
    const seed = Date.now() % 1_000_000;
    console.log(`text-deltas stop seed ${seed}`);
    const random = mulberry32(seed);
    for (let trial = 0; trial < 200; trial++) {
      const text = randomText(random, 5 + Math.floor(random() * 30));
      const stops = [text.slice(3, 5), '€中', 'zz'].filter((stop) => stop !== '');
      const ids = [...new TextEncoder().encode(text)];
      const { pieces, finalText } = stream(ids, stops);
      expect(pieces.join('')).toBe(finalText);
      for (const stop of stops) expect(pieces.slice(0, -1).join('')).not.toContain(stop);
    }
  });

  it('refuses a final text that does not extend what was sent', () => {
    const deltas = new TextDeltas(decode, []);
    const ids = [...new TextEncoder().encode('hello world')];
    expect(deltas.next(ids)).toBe('hello worl');
    expect(() => deltas.finish('goodbye')).toThrow(/not a prefix/);
  });
});
