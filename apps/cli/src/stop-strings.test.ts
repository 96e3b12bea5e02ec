import { describe, expect, it } from 'vitest';
import { LineProblems } from './line-problems.ts';
import { cutAtStopString, readStopStrings } from './stop-strings.ts';

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
});
