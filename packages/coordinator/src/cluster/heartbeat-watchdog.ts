/**
 * The coordinator's side of a device actor's heartbeats: one heartbeat posted per interval, and
 * the actor declared lost once nothing at all has been heard from it for `timeoutMs` (any
 * message counts: a worker busy in a long step still answers between layers).
 */
export class HeartbeatWatchdog {
  private timer: NodeJS.Timeout | undefined;
  private lastHeardMs = Date.now();
  private numSent = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
  ) {}

  /** Something came from the actor now. */
  heard(): void {
    this.lastHeardMs = Date.now();
  }

  /**
   * Starts the beats: `post` sends heartbeat number `seq`; `onSilent` is called once (and the
   * beats stop) when the actor has been silent past the timeout, with how long it was.
   */
  start(post: (seq: number) => void, onSilent: (silentMs: number, timeoutMs: number) => void): void {
    this.stop();
    this.lastHeardMs = Date.now();
    this.timer = setInterval(() => {
      const silentMs = Date.now() - this.lastHeardMs;
      if (silentMs > this.timeoutMs) {
        this.stop();
        onSilent(silentMs, this.timeoutMs);
        return;
      }
      post(this.numSent++);
    }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
