/**
 * Logging of anything a peer chose (names, reasons, rejected-frame details) before or after
 * authentication: strings are quoted with control characters escaped and cut short, so a peer
 * cannot write fake log lines; and lines go through a token bucket, so a flood of bad frames or
 * connections cannot fill the disk (the count of suppressed lines is logged when it refills).
 */

/** Longest peer-chosen string quoted into a log line. */
export const MAX_LOGGED_PEER_STRING = 80;

/** `value` as a quoted, escaped, length-bounded string safe to put in one log line. */
export function escapeForLog(value: unknown, maxLength = MAX_LOGGED_PEER_STRING): string {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  const text = typeof value === 'string' ? value : String(value);
  const cut = text.length > maxLength ? `${text.slice(0, maxLength)}…(${text.length} chars)` : text;
  // JSON escapes quotes, backslashes and C0 controls; also escape C1 controls and line/paragraph
  // separators, which some terminals and log viewers treat as line breaks.
  return JSON.stringify(cut).replace(
    /[\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

export interface RateLimitOptions {
  /** Lines allowed in a burst (default 20). */
  burst?: number;
  /** Lines per second refilled (default 5). */
  perSecond?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

/** A log function that drops lines beyond the budget and later says how many it dropped. */
export function rateLimitedLog(
  log: (line: string) => void,
  options: RateLimitOptions = {},
): (line: string) => void {
  const burst = options.burst ?? 20;
  const perSecond = options.perSecond ?? 5;
  const now = options.now ?? Date.now;
  let tokens = burst;
  let last = now();
  let suppressed = 0;
  return (line) => {
    const t = now();
    tokens = Math.min(burst, tokens + ((t - last) / 1000) * perSecond);
    last = t;
    if (tokens < 1) {
      suppressed++;
      return;
    }
    tokens -= 1;
    if (suppressed > 0) {
      log(`log: ${suppressed} lines about peers suppressed (rate limit)`);
      suppressed = 0;
      tokens = Math.max(0, tokens - 1);
    }
    log(line);
  };
}
