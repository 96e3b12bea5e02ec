/**
 * OpenAI's `stop`: up to 4 strings; the answer ends before the first one the generated text
 * contains, with finish_reason "stop": the text before the stop string, and the output ids up to
 * the one that completed it (as vLLM counts them). The engine stops generating at that token
 * (stopWhenOf; a remote job's client runs it on the job's progress messages and asks the
 * coordinator to stop, a few tokens later), and the output is cut here. Either way the answer is
 * the same tokens as a run without `stop`, cut.
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

/**
 * Whether `text` is already cut for good: it holds a stop string, and no stop string that could
 * still complete with later text would start at or before the first one found (such a one would
 * win the cut, being earlier, or as early and listed first). Then stopping generation here gives
 * the same answer as running on and cutting afterwards.
 */
export function isStopDetermined(text: string, stops: readonly string[]): boolean {
  let cutAt = -1;
  for (const stop of stops) {
    const index = text.indexOf(stop);
    if (index >= 0 && (cutAt < 0 || index < cutAt)) cutAt = index;
  }
  if (cutAt < 0) return false;
  for (const stop of stops) {
    for (let start = Math.max(0, text.length - stop.length + 1); start <= cutAt; start++) {
      if (stop.startsWith(text.slice(start))) return false;
    }
  }
  return true;
}

/**
 * The engine's early stop for a request with stop strings (EngineRequest.stopWhen): generation
 * ends at the step whose token completes the cut, and the post-hoc cut then gives the same
 * answer as a full run. Decodes the whole output at each step, so it costs O(n^2) decoding over
 * an n-token answer; only requests with stop strings pay it.
 */
export function stopWhenOf(
  stops: readonly string[],
  decode: (ids: number[]) => string,
): ((outputTokenIds: readonly number[]) => boolean) | undefined {
  if (stops.length === 0) return undefined;
  return (outputTokenIds) => isStopDetermined(decode([...outputTokenIds]), stops);
}

/** stopWhenOf for a parsed line: none without stop strings or without a tokenizer to decode with. */
export function stopWhenOfRequest(
  request: { stopStrings: readonly string[] },
  tokenizer: { decode(ids: number[]): string } | null,
): ((outputTokenIds: readonly number[]) => boolean) | undefined {
  return tokenizer === null ? undefined : stopWhenOf(request.stopStrings, (ids) => tokenizer.decode(ids));
}
