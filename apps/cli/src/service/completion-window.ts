/**
 * A batch's completion window: OpenAI accepts "24h" only, and a batch not finished within it
 * becomes `expired`. `--batch-window-override DURATION` (a test and operations knob) applies a
 * different window to every batch the server creates, e.g. 2s in tests.
 */
import { UsageError } from '../args.ts';

/** The completion_window values POST /v1/batches accepts, as OpenAI documents them. */
export const COMPLETION_WINDOWS: Readonly<Record<string, number>> = { '24h': 24 * 3600 * 1000 };

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** '500ms', '2s', '30m', '24h' in milliseconds; a UsageError naming the flag otherwise. */
export function parseDurationMs(text: string, flag: string): number {
  const match = /^(\d+)(ms|s|m|h)$/.exec(text.trim());
  const value = match === null ? 0 : Number(match[1]) * UNIT_MS[match[2]];
  if (match === null || value <= 0) {
    throw new UsageError(`${flag} must be a positive duration like 500ms, 2s, 30m or 24h, got '${text}'`);
  }
  return value;
}

/** Unix seconds at which a batch created now with a window of `windowMs` expires. */
export function expiresAtSeconds(windowMs: number, nowMs = Date.now()): number {
  return Math.ceil((nowMs + windowMs) / 1000);
}
