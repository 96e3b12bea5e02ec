import type { RequestOutput } from './request.ts';

/** How one engine's step ended: its finished requests, or why it failed. */
export type SettledStep = { index: number; outputs: RequestOutput[] } | { index: number; error: Error };

interface SteppableEngine {
  hasUnfinishedRequests(): boolean;
  step(): Promise<RequestOutput[]>;
}

/** At most one step in flight per engine index, over several engines stepping at once. */
export class InFlightSteps {
  private readonly steps = new Map<number, Promise<SettledStep>>();

  get size(): number {
    return this.steps.size;
  }

  /** Starts a step of engine `index` unless one is already in flight or it has no work. */
  startIfIdle(index: number, engine: SteppableEngine): void {
    if (this.steps.has(index) || !engine.hasUnfinishedRequests()) return;
    this.steps.set(
      index,
      engine.step().then(
        (outputs): SettledStep => ({ index, outputs }),
        (error: unknown): SettledStep => ({
          index,
          error: error instanceof Error ? error : new Error(String(error)),
        }),
      ),
    );
  }

  /** Waits for the first step in flight (there must be one) to settle, and forgets it. */
  async next(): Promise<SettledStep> {
    const settled = await Promise.race(this.steps.values());
    this.steps.delete(settled.index);
    return settled;
  }

  /** Forgets the step of engine `index`: nobody waits for it any more. */
  forget(index: number): void {
    this.steps.delete(index);
  }
}
