/**
 * Admission for connections that have not authenticated yet: at most `perAddress` from one
 * address and `total` overall hold a slot until their handshake succeeds or they close, so
 * unauthenticated peers cannot pin unbounded sockets and buffers. Failed handshakes are
 * remembered per address and slow that address down (the refusal is answered after a delay
 * that doubles with each failure), so tokens cannot be guessed fast.
 */

export interface ConnectionGateOptions {
  /** Unauthenticated connections from one address (default 8). */
  perAddress?: number;
  /** Unauthenticated connections overall (default 64). */
  total?: number;
  /** Delay after the first failed handshake of an address (default 50 ms); doubles per failure. */
  baseDelayMs?: number;
  /** Largest refusal delay (default 5 s). */
  maxDelayMs?: number;
  /** A failure is forgotten after this long without another (default 10 min). */
  forgetAfterMs?: number;
  now?: () => number;
}

/** Addresses with failures remembered at most; beyond this the oldest are forgotten. */
const MAX_REMEMBERED_ADDRESSES = 10_000;

export class ConnectionGate {
  private readonly pending = new Map<string, number>();
  private numPending = 0;
  private readonly failures = new Map<string, { count: number; at: number }>();
  private readonly perAddress: number;
  private readonly total: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly forgetAfterMs: number;
  private readonly now: () => number;

  constructor(options: ConnectionGateOptions = {}) {
    this.perAddress = options.perAddress ?? 8;
    this.total = options.total ?? 64;
    this.baseDelayMs = options.baseDelayMs ?? 50;
    this.maxDelayMs = options.maxDelayMs ?? 5000;
    this.forgetAfterMs = options.forgetAfterMs ?? 600_000;
    this.now = options.now ?? Date.now;
  }

  /**
   * Takes an unauthenticated slot for `address`; returns a release function (idempotent), or
   * a reason string when the address or the whole listener is at its cap.
   */
  admit(address: string): (() => void) | string {
    const held = this.pending.get(address) ?? 0;
    if (held >= this.perAddress) return `too many unauthenticated connections from this address (${held})`;
    if (this.numPending >= this.total) return `too many unauthenticated connections (${this.numPending})`;
    this.pending.set(address, held + 1);
    this.numPending++;
    let isReleased = false;
    return () => {
      if (isReleased) return;
      isReleased = true;
      this.numPending--;
      const left = (this.pending.get(address) ?? 1) - 1;
      if (left > 0) this.pending.set(address, left);
      else this.pending.delete(address);
    };
  }

  /** Unauthenticated connections held now. */
  get numUnauthenticated(): number {
    return this.numPending;
  }

  /** Records a failed handshake; returns how long to wait before answering it. */
  recordFailure(address: string): number {
    const t = this.now();
    const previous = this.failures.get(address);
    const count = previous && t - previous.at < this.forgetAfterMs ? previous.count + 1 : 1;
    this.failures.delete(address);
    this.failures.set(address, { count, at: t });
    if (this.failures.size > MAX_REMEMBERED_ADDRESSES) {
      this.failures.delete(this.failures.keys().next().value as string);
    }
    return Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(count - 1, 20));
  }

  /** A successful handshake clears the address's failures. */
  recordSuccess(address: string): void {
    this.failures.delete(address);
  }
}
