/**
 * What the HTML report draws, computed from trace events: tokens per second in fixed time
 * buckets (from step spans) and the phase bands of each replica (steps and re-shards merged into
 * runs of the same phase). Times are milliseconds from the run's first event.
 */
import type { TraceEvent } from '@seesaw/coordinator';

export type BandCategory = 'prefill' | 'decode' | 'reshard';

export interface ThroughputBucket {
  /** Bucket start, ms from the run's first event. */
  startMs: number;
  /** Tokens of prefill-phase steps (prompt chunks, and decodes mixed into them) per second. */
  prefillTokensPerSecond: number;
  /** Tokens of decode steps per second. */
  decodeTokensPerSecond: number;
}

export interface PhaseBand {
  category: BandCategory;
  startMs: number;
  endMs: number;
}

export interface PhaseRow {
  /** The replica's step track ('replica 0'). */
  track: string;
  bands: PhaseBand[];
}

/** 1 s buckets, as asked for, once a run lasts 10 s; shorter runs get 1/2/5 x 10^k ms buckets making about 10, at least 10 ms. */
export function chooseBucketMs(spanMs: number): number {
  if (spanMs >= 10_000) return 1000;
  const raw = Math.max(10, spanMs / 10);
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= raw) ?? 1000;
}

const isStep = (event: TraceEvent) => event.category === 'prefill' || event.category === 'decode';

/** The earliest start and the latest end over all events; [0, 0] when there are none. */
export function timeRange(events: readonly TraceEvent[]): { originMs: number; endMs: number } {
  if (events.length === 0) return { originMs: 0, endMs: 0 };
  let originMs = Number.POSITIVE_INFINITY;
  let endMs = Number.NEGATIVE_INFINITY;
  for (const event of events) {
    originMs = Math.min(originMs, event.startMs);
    endMs = Math.max(endMs, event.startMs + Math.max(0, event.durationMs));
  }
  return { originMs, endMs: endMs - originMs };
}

function stepTokens(event: TraceEvent): number {
  const value = event.args?.numTokens;
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

/**
 * Tokens per second in buckets of bucketMs, summed over replicas. A step's tokens are spread
 * evenly over its span, so a step across a bucket boundary counts in both by overlap; a
 * zero-length step counts whole in the bucket it starts in.
 */
export function throughputSeries(events: readonly TraceEvent[], bucketMs = 1000): ThroughputBucket[] {
  const { originMs, endMs } = timeRange(events);
  const numBuckets = Math.max(1, Math.ceil(endMs / bucketMs));
  const prefill = new Float64Array(numBuckets);
  const decode = new Float64Array(numBuckets);
  for (const event of events) {
    if (!isStep(event)) continue;
    const tokens = stepTokens(event);
    if (tokens === 0) continue;
    const into = event.category === 'prefill' ? prefill : decode;
    const start = event.startMs - originMs;
    const duration = Math.max(0, event.durationMs);
    if (duration === 0) {
      into[Math.min(numBuckets - 1, Math.floor(start / bucketMs))] += tokens;
      continue;
    }
    const end = start + duration;
    for (
      let bucket = Math.floor(start / bucketMs);
      bucket * bucketMs < end && bucket < numBuckets;
      bucket++
    ) {
      const overlap = Math.min(end, (bucket + 1) * bucketMs) - Math.max(start, bucket * bucketMs);
      if (overlap > 0) into[bucket] += (tokens * overlap) / duration;
    }
  }
  const perSecond = 1000 / bucketMs;
  return Array.from({ length: numBuckets }, (_, bucket) => ({
    startMs: bucket * bucketMs,
    prefillTokensPerSecond: prefill[bucket] * perSecond,
    decodeTokensPerSecond: decode[bucket] * perSecond,
  }));
}

/**
 * One row per step track, in order of first appearance; its re-shard spans come from the track
 * of the same name plus ' reshard'. Consecutive spans of one category merge into a band, so a
 * Seesaw run shows a few long bands and a static one shows how prefill and decode steps interleave.
 */
export function phaseRows(events: readonly TraceEvent[]): PhaseRow[] {
  const { originMs } = timeRange(events);
  const spansOf = new Map<string, PhaseBand[]>();
  for (const event of events) {
    if (isStep(event) && !spansOf.has(event.track)) spansOf.set(event.track, []);
  }
  for (const event of events) {
    const isReshard = event.category === 'reshard' && event.track.endsWith(' reshard');
    const row = isReshard
      ? event.track.slice(0, -' reshard'.length)
      : isStep(event)
        ? event.track
        : undefined;
    const spans = row === undefined ? undefined : spansOf.get(row);
    if (spans === undefined) continue;
    const startMs = event.startMs - originMs;
    spans.push({
      category: event.category as BandCategory,
      startMs,
      endMs: startMs + Math.max(0, event.durationMs),
    });
  }
  return [...spansOf].map(([track, spans]) => {
    spans.sort((a, b) => a.startMs - b.startMs || a.endMs - b.endMs);
    const bands: PhaseBand[] = [];
    for (const span of spans) {
      const last = bands[bands.length - 1];
      if (last !== undefined && last.category === span.category)
        last.endMs = Math.max(last.endMs, span.endMs);
      else bands.push({ ...span });
    }
    return { track, bands };
  });
}
