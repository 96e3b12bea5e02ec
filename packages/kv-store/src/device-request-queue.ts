/**
 * The order the kv-store thread serves its device links' requests in.
 *
 * Within a link: arrival order, always (a copy in never overtakes an earlier copy out on the same
 * link, as a kvGet never overtakes an earlier kvPut).
 *
 * Across links: a request its device waits for now (a swap, a write-back) goes before another
 * link's prefetch, which its device awaits only at a later step. Served as they arrived, a decode
 * phase's first step stalled: one TP rank's swap-ins landed and it posted its prefetches, and
 * Node hands over a port's queued messages together, so the other rank's last swap-ins waited
 * behind all of them (41 ms against 13 ms on 512-token sequences) while the first rank idled at
 * the step's all-reduce. Within each class links are served in turn; a prefetch waits only while
 * another link has work its device is blocked on, which is finite (that device waits for it).
 *
 * Links never depend on each other's order: each device moves only its own layers x KV heads, and
 * a re-shard flushes every device before the next layout reads what the last one wrote. So
 * reordering across links changes when a copy is done, never what it reads or writes.
 *
 * Requests run one slice at a time (SLICE_MS) between turns of the event loop, so messages that
 * arrive meanwhile on other links are queued (and can be preferred) before the next slice.
 */

/** Longest run of requests between two turns of the event loop, ms. */
const SLICE_MS = 0.5;

interface Request {
  /** Awaited by its device only at a later step (a prefetch): served after other links' requests. */
  isBackground: boolean;
  run(): void;
}

export class DeviceRequestQueue<Link> {
  /** Each link's requests in arrival order; a link with none has no entry. */
  private readonly queues = new Map<Link, Request[]>();
  private isScheduled = false;

  /** `yieldThen` runs its callback after pending messages are delivered (setImmediate). */
  constructor(private readonly yieldThen: (callback: () => void) => void = setImmediate) {}

  get numQueued(): number {
    let sum = 0;
    for (const queue of this.queues.values()) sum += queue.length;
    return sum;
  }

  /** Queues `run` behind `link`'s earlier requests. */
  push(link: Link, isBackground: boolean, run: () => void): void {
    const queue = this.queues.get(link);
    if (queue) queue.push({ isBackground, run });
    else this.queues.set(link, [{ isBackground, run }]);
    this.schedule();
  }

  /** Forgets `link`'s queued requests (it closed: nobody can read their answers). */
  drop(link: Link): void {
    this.queues.delete(link);
  }

  /** Runs everything queued now, in the same order as the slices would (a shutdown's drain). */
  runAll(): void {
    for (let next = this.takeNext(); next; next = this.takeNext()) next.run();
  }

  private schedule(): void {
    if (this.isScheduled) return;
    this.isScheduled = true;
    this.yieldThen(() => {
      this.isScheduled = false;
      this.runSlice();
    });
  }

  private runSlice(): void {
    const endMs = performance.now() + SLICE_MS;
    do {
      const next = this.takeNext();
      if (!next) return;
      next.run();
    } while (performance.now() < endMs);
    this.schedule();
  }

  /**
   * The head of the first link (in turn) whose head is a foreground request, else of the first
   * link with any; that link moves to the back of the turn order.
   */
  private takeNext(): Request | undefined {
    let chosen: Link | undefined;
    for (const [link, queue] of this.queues) {
      if (!queue[0]!.isBackground) {
        chosen = link;
        break;
      }
      chosen ??= link;
    }
    if (chosen === undefined) return undefined;
    const queue = this.queues.get(chosen)!;
    const request = queue.shift()!;
    // Re-inserting moves the link to the end of the Map's order: the next pick starts past it.
    this.queues.delete(chosen);
    if (queue.length > 0) this.queues.set(chosen, queue);
    return request;
  }
}
