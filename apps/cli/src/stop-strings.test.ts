import { describe, expect, it } from 'vitest';
import { makeRng, testSeed } from '../../../packages/kernels/test/test-support.ts';
import { LineProblems } from './line-problems.ts';
import { cutAtStopString, isStopDetermined, readStopStrings, stopWhenOf } from './stop-strings.ts';

/** One id per character: id 100 + char code, so a prefix of ids decodes to a prefix of text. */
const decode = (ids: number[]) => ids.map((id) => String.fromCharCode(id - 100)).join('');
const encode = (text: string) => [...text].map((c) => c.charCodeAt(0) + 100);

describe('stop strings', () => {
  it('cut before the earliest stop string, keeping the ids up to the one that completed it', () => {
    const text = 'one two. three\nfour';
    const ids = encode(text);
    expect(cutAtStopString(ids, text, ['\n', '.'], decode)).toEqual({ text: 'one two', numIds: 8 });
    expect(cutAtStopString(ids, text, ['three'], decode)).toEqual({ text: 'one two. ', numIds: 14 });
    expect(cutAtStopString(ids, text, ['five'], decode)).toBeNull();
    expect(cutAtStopString(ids, text, [], decode)).toBeNull();
  });

  it('a stop string at the very start leaves an empty answer', () => {
    expect(cutAtStopString(encode('xyz'), 'xyz', ['x'], decode)).toEqual({ text: '', numIds: 1 });
  });

  it('reads a string or a list of up to 4 non-empty strings', () => {
    const problems = new LineProblems();
    expect(readStopStrings('a', problems)).toEqual(['a']);
    expect(readStopStrings(['a', 'b'], problems)).toEqual(['a', 'b']);
    expect(readStopStrings(null, problems)).toEqual([]);
    expect(problems.messages).toEqual([]);
    expect(readStopStrings(['a', 1], problems)).toEqual([]);
    expect(problems.messages).toHaveLength(1);
  });

  it('stopping at the first determined step gives the same answer as the full run cut', () => {
    const rng = makeRng(testSeed());
    const letter = () => 'abc'[Math.floor(rng() * 3)];
    const word = (max: number) => Array.from({ length: 1 + Math.floor(rng() * max) }, letter).join('');
    for (let trial = 0; trial < 2000; trial++) {
      const text = word(30);
      const stops = Array.from({ length: 1 + Math.floor(rng() * 4) }, () => word(4));
      const ids = encode(text);
      const stopWhen = stopWhenOf(stops, decode)!;
      let k = 1;
      while (k < ids.length && !stopWhen(ids.slice(0, k))) k++;
      const early = ids.slice(0, k);
      expect({ text, stops, cut: cutAtStopString(early, decode(early), stops, decode) }).toEqual({
        text,
        stops,
        cut: cutAtStopString(ids, text, stops, decode),
      });
    }
  });

  it('waits while a stop string that would win could still complete', () => {
    // "y" is in, but "xyz" starts earlier and may yet complete.
    expect(isStopDetermined('xy', ['xyz', 'y'])).toBe(false);
    expect(isStopDetermined('xyq', ['xyz', 'y'])).toBe(true);
    expect(isStopDetermined('ab', ['b'])).toBe(true);
    expect(isStopDetermined('ab', ['c'])).toBe(false);
    expect(stopWhenOf([], decode)).toBeUndefined();
  });
});
