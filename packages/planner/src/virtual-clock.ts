/**
 * Simulated time for the planner's engine runs: a queue of wake-ups ordered by time (ties in
 * the order they were asked for). Nothing advances by itself: the driver calls advance() when
 * the engine is waiting, which moves time to the earliest wake-up and resolves it. No real
 * timers, so a simulated hour costs only the work of its steps.
 */
interface WakeUp {
  atSeconds: number;
  resolve: () => void;
}

export class VirtualClock {
  private nowSeconds: number;
  /** Sorted by time, ties in arrival order; few entries at once (one per step in flight). */
  private readonly queue: WakeUp[] = [];

  constructor(startSeconds = 0) {
    this.nowSeconds = startSeconds;
  }

  get now(): number {
    return this.nowSeconds;
  }

  get numPending(): number {
    return this.queue.length;
  }

  /** Resolves once advance() reaches `atSeconds` (a time in the past wakes on the next advance). */
  at(atSeconds: number): Promise<void> {
    return new Promise((resolve) => {
      const wakeUp: WakeUp = { atSeconds: Math.max(atSeconds, this.nowSeconds), resolve };
      let i = this.queue.length;
      while (i > 0 && this.queue[i - 1].atSeconds > wakeUp.atSeconds) i--;
      this.queue.splice(i, 0, wakeUp);
    });
  }

  /** Moves time to the earliest wake-up and resolves it; throws when nothing is waiting. */
  advance(): void {
    const wakeUp = this.queue.shift();
    if (!wakeUp) throw new Error('the simulated clock was advanced with nothing waiting on it');
    this.nowSeconds = wakeUp.atSeconds;
    wakeUp.resolve();
  }
}
