/** What a span on a timeline shows: a step of a phase, a re-shard, a KV transfer, or waiting. */
export type TraceCategory = 'prefill' | 'decode' | 'reshard' | 'kv' | 'wait';

/** One complete span (Chrome trace 'X' event once written out). Times in ms on the recorder's clock. */
export interface TraceEvent {
  /** Timeline row, e.g. 'replica 0', 'replica 0 reshard', 'replica 0 kv', 'engine 1'. */
  track: string;
  name: string;
  category: TraceCategory;
  startMs: number;
  durationMs: number;
  args?: Record<string, number | string>;
}

/**
 * Collects trace events from engines (and the planner's simulator, which passes its own
 * simulated clock). Recording is an array push: cheap enough to leave on for a whole run.
 */
export class TraceRecorder {
  readonly events: TraceEvent[] = [];
  private readonly clock: () => number;
  private readonly nextTrackIndex = new Map<string, number>();

  constructor(clock?: () => number) {
    this.clock = clock ?? (() => performance.now());
  }

  now(): number {
    return this.clock();
  }

  /**
   * A time on the coordinator's epoch clock (performance.timeOrigin + performance.now(), where
   * device spans are mapped to) on this recorder's clock, which ticks in real ms.
   */
  fromEpochMs(epochMs: number): number {
    return epochMs - (performance.timeOrigin + performance.now()) + this.now();
  }

  record(event: TraceEvent): void {
    if (!(Number.isFinite(event.startMs) && Number.isFinite(event.durationMs) && event.durationMs >= 0)) {
      throw new RangeError(
        `trace event ${JSON.stringify(event.name)}: bad start ${event.startMs} or duration ${event.durationMs}`,
      );
    }
    this.events.push(event);
  }

  /**
   * A fresh track name `${prefix} ${n}`, n counting from 0 per prefix: engines built one after
   * another from the same options (ClusterEngine's, replica-major) get 'engine 0', 'engine 1', ...
   */
  claimTrack(prefix: string): string {
    const index = this.nextTrackIndex.get(prefix) ?? 0;
    this.nextTrackIndex.set(prefix, index + 1);
    return `${prefix} ${index}`;
  }
}
