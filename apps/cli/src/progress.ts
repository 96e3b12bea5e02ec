/**
 * Run progress on stderr: a live bar redrawn in place on a terminal, or a plain line every
 * few seconds when stderr is a file or pipe (logs stay readable). Formatting is pure
 * functions; ProgressReporter only decides when to print.
 */

export interface ProgressCounts {
  /** Requests finished. */
  numDone: number;
  numOutputTokens: number;
  /** Token positions computed so far: prompt tokens (first time) plus output tokens. */
  numWorkDone: number;
  /**
   * Token positions the run computes at most: prompt plus max output tokens of unfinished
   * requests, prompt plus actual output of finished ones (shrinks as requests stop early).
   */
  numWorkTotal: number;
}

export interface ProgressSnapshot extends ProgressCounts {
  numTotal: number;
  elapsedMs: number;
}

/** `m:ss`, or `h:mm:ss` from one hour on. */
export function formatDuration(ms: number): string {
  const totalSeconds = Math.max(0, Math.floor(ms / 1000));
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  const ss = String(seconds).padStart(2, '0');
  if (hours > 0) return `${hours}:${String(minutes).padStart(2, '0')}:${ss}`;
  return `${minutes}:${ss}`;
}

/** Output tokens per second since the start; 0 before any time has passed. */
export function outputTokensPerSecond(snapshot: ProgressSnapshot): number {
  return snapshot.elapsedMs > 0 ? (snapshot.numOutputTokens * 1000) / snapshot.elapsedMs : 0;
}

/**
 * Remaining time at the average token rate so far; null before any token is computed.
 * Counted in tokens, not requests: with continuous batching most requests finish near the
 * end together, so a request-rate estimate would overshoot for most of the run.
 */
export function estimateRemainingMs(snapshot: ProgressSnapshot): number | null {
  if (snapshot.numWorkDone <= 0) return null;
  const numLeft = Math.max(0, snapshot.numWorkTotal - snapshot.numWorkDone);
  return (snapshot.elapsedMs * numLeft) / snapshot.numWorkDone;
}

function formatStatus(snapshot: ProgressSnapshot): string {
  const eta = estimateRemainingMs(snapshot);
  return [
    `${snapshot.numDone}/${snapshot.numTotal} req`,
    `${Math.round(outputTokensPerSecond(snapshot))} tok/s`,
    `${formatDuration(snapshot.elapsedMs)} elapsed`,
    `ETA ${eta === null ? '--:--' : formatDuration(eta)}`,
  ].join(' | ');
}

/** `[#####.....] 12/100 req | 345 tok/s | 0:12 elapsed | ETA 1:30` */
export function formatProgressBar(snapshot: ProgressSnapshot, barWidth = 20): string {
  const fraction = snapshot.numTotal > 0 ? Math.min(1, snapshot.numDone / snapshot.numTotal) : 1;
  const numFilled = Math.floor(fraction * barWidth);
  return `[${'#'.repeat(numFilled)}${'.'.repeat(barWidth - numFilled)}] ${formatStatus(snapshot)}`;
}

/** `progress: 12/100 req | 345 tok/s | 0:12 elapsed | ETA 1:30` */
export function formatProgressLine(snapshot: ProgressSnapshot): string {
  return `progress: ${formatStatus(snapshot)}`;
}

export interface ProgressStream {
  isTTY?: boolean;
  write(text: string): unknown;
}

const TTY_REDRAW_MS = 100;
export const PLAIN_INTERVAL_MS = 5000;

export class ProgressReporter {
  private counts: ProgressCounts = { numDone: 0, numOutputTokens: 0, numWorkDone: 0, numWorkTotal: 0 };
  private lastPrintMs: number;
  private timer: NodeJS.Timeout | null = null;
  private readonly isTty: boolean;

  constructor(
    private readonly stream: ProgressStream,
    private readonly numTotal: number,
    private readonly now: () => number = () => performance.now(),
    private readonly startMs: number = now(),
  ) {
    this.isTty = stream.isTTY === true;
    // The bar appears at once; plain lines start one interval in, so short runs log little.
    this.lastPrintMs = this.isTty ? Number.NEGATIVE_INFINITY : startMs;
    // A timer keeps the display moving through long steps when the device yields the loop;
    // update() also prints when due, for devices that compute synchronously.
    this.timer = setInterval(() => this.printIfDue(), this.isTty ? 1000 : PLAIN_INTERVAL_MS);
    this.timer.unref();
    if (this.isTty) this.print();
  }

  snapshot(): ProgressSnapshot {
    return { ...this.counts, numTotal: this.numTotal, elapsedMs: this.now() - this.startMs };
  }

  update(counts: ProgressCounts): void {
    this.counts = { ...counts };
    this.printIfDue();
  }

  /** Stops the timer and prints the final state (the bar ends with a newline). */
  finish(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.print();
    if (this.isTty) this.stream.write('\n');
  }

  private printIfDue(): void {
    const interval = this.isTty ? TTY_REDRAW_MS : PLAIN_INTERVAL_MS;
    if (this.now() - this.lastPrintMs >= interval) this.print();
  }

  private print(): void {
    this.lastPrintMs = this.now();
    const snapshot = this.snapshot();
    if (this.isTty) this.stream.write(`\r${formatProgressBar(snapshot)}\x1b[K`);
    else this.stream.write(`${formatProgressLine(snapshot)}\n`);
  }
}
