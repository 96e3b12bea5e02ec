import { sumByHalvingTree, type TensorParallelGroup } from './tensor-parallel-group.ts';

type OpKind = 'allReduceSum' | 'allGather';

/** One collective in progress: each rank's contribution and the ranks waiting for the result. */
interface PendingOp {
  kind: OpKind;
  contributions: Float32Array[];
  waiters: Array<{ resolve: (result: Float32Array) => void; reject: (error: Error) => void }>;
}

/**
 * The meeting point of one in-process group. Operation n of every rank meets operation n of the
 * others (each rank counts its own operations), so back-to-back collectives can't mix.
 */
class Rendezvous {
  private readonly pending = new Map<number, PendingOp>();
  private failure: Error | undefined;

  constructor(readonly size: number) {}

  /** Resolves, on every rank, to combine(contributions in rank order), computed once by the last arrival. */
  meet(
    opIndex: number,
    kind: OpKind,
    rank: number,
    contribution: Float32Array,
    combine: (contributions: Float32Array[]) => Float32Array,
  ): Promise<Float32Array> {
    if (this.failure) return Promise.reject(this.failure);
    let op = this.pending.get(opIndex);
    if (!op) {
      op = { kind, contributions: new Array(this.size), waiters: [] };
      this.pending.set(opIndex, op);
    }
    if (op.kind !== kind) {
      this.fail(new Error(`collective #${opIndex}: rank ${rank} called ${kind}, another rank ${op.kind}`));
      return Promise.reject(this.failure);
    }
    // A private copy: a rank may reuse its buffer before the slowest rank has arrived.
    op.contributions[rank] = contribution.slice();
    const result = new Promise<Float32Array>((resolve, reject) => op.waiters.push({ resolve, reject }));
    if (op.waiters.length === this.size) {
      this.pending.delete(opIndex);
      try {
        const combined = combine(op.contributions);
        for (const waiter of op.waiters) waiter.resolve(combined);
      } catch (error) {
        for (const waiter of op.waiters) waiter.reject(error as Error);
        this.fail(error as Error);
      }
    }
    return result;
  }

  /** Fails every waiting and later collective (a rank died: the others must not hang). */
  fail(error: Error): void {
    this.failure ??= error;
    for (const op of this.pending.values()) for (const waiter of op.waiters) waiter.reject(this.failure);
    this.pending.clear();
  }
}

function sumParts(parts: Float32Array[]): Float32Array {
  parts.forEach((part, r) => {
    if (part.length !== parts[0].length) {
      throw new RangeError(
        `allReduceSum: rank ${r} has ${part.length} floats, rank 0 has ${parts[0].length}`,
      );
    }
  });
  const sum = new Float32Array(parts[0].length);
  sumByHalvingTree(sum, parts);
  return sum;
}

function concatParts(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Ranks as concurrent async tasks in one thread: each collective is a promise rendezvous, and
 * the last rank to arrive computes the result once, by the halving tree over ranks, for everyone.
 */
export class InProcessGroup implements TensorParallelGroup {
  private numOps = 0;

  private constructor(
    private readonly rendezvous: Rendezvous,
    readonly rank: number,
  ) {}

  /** One member per rank, all sharing one rendezvous. */
  static create(size: number): InProcessGroup[] {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`group size must be >= 1, got ${size}`);
    const rendezvous = new Rendezvous(size);
    return Array.from({ length: size }, (_, rank) => new InProcessGroup(rendezvous, rank));
  }

  get size(): number {
    return this.rendezvous.size;
  }

  async allReduceSum(buf: Float32Array): Promise<void> {
    buf.set(await this.rendezvous.meet(this.numOps++, 'allReduceSum', this.rank, buf, sumParts));
  }

  async allGather(local: Float32Array, out: Float32Array): Promise<void> {
    const gathered = await this.rendezvous.meet(this.numOps++, 'allGather', this.rank, local, concatParts);
    if (gathered.length !== out.length) {
      throw new RangeError(`allGather: ranks contribute ${gathered.length} floats, out holds ${out.length}`);
    }
    out.set(gathered);
  }

  /** Makes every pending and later collective of this group reject with `error`. */
  abort(error: Error): void {
    this.rendezvous.fail(error);
  }
}
