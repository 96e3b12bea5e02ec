/**
 * OpenAI's `stop`: up to 4 strings; the answer ends before the first one the generated text
 * contains, with finish_reason "stop". The engine stops on token ids only, so a request with stop
 * strings runs to its own end (max_tokens, EOS or a stop id) and its output is cut here: the
 * text before the stop string, and the output ids up to the one that completed it (as vLLM
 * counts them). The same tokens as a run without `stop`, cut, so outputs stay a pure function
 * of the request; the cost is the tokens generated past the stop string.
 */
import type { LineProblems } from './line-problems.ts';

/** OpenAI's limit on stop sequences. */
export const MAX_STOP_STRINGS = 4;

/** Reads `stop` (a string or a list of strings; null and [] are none). */
export function readStopStrings(value: unknown, problems: LineProblems): string[] {
  if (value === undefined || value === null) return [];
  const list = typeof value === 'string' ? [value] : value;
  if (
    !Array.isArray(list) ||
    list.length > MAX_STOP_STRINGS ||
    list.some((item) => typeof item !== 'string' || item === '')
  ) {
    problems.add(`stop must be a non-empty string or a list of up to ${MAX_STOP_STRINGS} non-empty strings`);
    return [];
  }
  return list as string[];
}

export interface StopCut {
  text: string;
  /** How many output ids the answer keeps. */
  numIds: number;
}

/**
 * Where the first stop string cuts `ids`' text, or null when none occurs. `decode` turns a
 * prefix of the ids into text (the same call that made `text`).
 */
export function cutAtStopString(
  ids: readonly number[],
  text: string,
  stops: readonly string[],
  decode: (ids: number[]) => string,
): StopCut | null {
  let cutAt = -1;
  let stop = '';
  for (const candidate of stops) {
    const index = text.indexOf(candidate);
    if (index >= 0 && (cutAt < 0 || index < cutAt)) {
      cutAt = index;
      stop = candidate;
    }
  }
  if (cutAt < 0) return null;
  // The shortest prefix of ids whose text holds that stop string in full.
  let numIds = ids.length;
  for (let k = 1; k <= ids.length; k++) {
    if (decode(ids.slice(0, k)).includes(stop)) {
      numIds = k;
      break;
    }
  }
  return { text: text.slice(0, cutAt), numIds };
}
