/**
 * How a replica's failure settles. Any actor's failure fails the replica, but a device that loses
 * a peer fails its own step too ("link to the previous stage closed"), a moment before or after
 * the peer's loss is reported: so a failure that is not a loss waits LOSS_GRACE_MS for one, and
 * the replica fails with the loss when it comes (a lost replica is recoverable, a failed one is
 * not).
 */
import { DeviceLostError } from './device-errors.ts';

/** How long a device's step failure waits for a loss of another device of the replica to explain it. */
const LOSS_GRACE_MS = 1000;

export class ReplicaFailure {
  private failureError: Error | undefined;
  /** A failure that is not a loss, held for LOSS_GRACE_MS in case a loss explains it. */
  private heldFailure: { error: Error; timer: NodeJS.Timeout } | undefined;
  private readonly settledListeners: Array<(error: Error) => void> = [];

  /** `onSettled` hears the settled failure first (the replica rejects its pending steps with it). */
  constructor(private readonly onSettled: (error: Error) => void) {}

  /** The replica's failure, once settled. */
  get error(): Error | undefined {
    return this.failureError;
  }

  /** A failure that is not a loss came (held, or settled since). */
  get isHeld(): boolean {
    return this.heldFailure !== undefined;
  }

  fail(error: Error): void {
    if (this.failureError) return;
    if (error instanceof DeviceLostError) {
      this.settle(error);
    } else {
      this.heldFailure ??= { error, timer: setTimeout(() => this.settle(error), LOSS_GRACE_MS) };
    }
  }

  private settle(error: Error): void {
    if (this.failureError) return;
    if (this.heldFailure) clearTimeout(this.heldFailure.timer);
    this.failureError = error;
    this.onSettled(error);
    for (const listener of this.settledListeners) listener(error);
    this.settledListeners.length = 0;
  }

  /** The replica's failure once settled (a loss within the grace wins over `error`). */
  settledFailure(error: Error): Promise<Error> {
    this.fail(error);
    if (this.failureError) return Promise.resolve(this.failureError);
    return new Promise((resolve) => this.settledListeners.push(resolve));
  }
}
