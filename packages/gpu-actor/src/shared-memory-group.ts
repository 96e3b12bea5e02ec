import { sumByHalvingTree, type TensorParallelGroup } from './tensor-parallel-group.ts';

/** Everything a rank needs to join a group; structured-cloneable, so it can be posted to a worker. */
export interface SharedMemoryGroupDescriptor {
  sab: SharedArrayBuffer;
  size: number;
  rank: number;
  /** Floats of each rank's slot: larger buffers go through in chunks of this many. */
  capacityFloats: number;
}

// Int32 control words. The barrier: ARRIVED counts ranks in the current generation; the last to
// arrive resets it and bumps GENERATION, which the others wait on (Atomics.wait/notify).
const ARRIVED = 0;
const GENERATION = 1;
// Then per rank, HEADER_INTS words: the operation it called and its buffer lengths, so every
// rank can check that all ranks are in the same collective with matching sizes.
const HEADER_BASE = 2;
const HEADER_INTS = 3;
const OP_ALL_REDUCE = 1;
const OP_ALL_GATHER = 2;
const OP_NAMES: Record<number, string> = { [OP_ALL_REDUCE]: 'allReduceSum', [OP_ALL_GATHER]: 'allGather' };
/** Data slots start on a cache line. */
const DATA_ALIGN = 64;
const DEFAULT_TIMEOUT_MS = 60_000;

function dataOffset(size: number): number {
  const controlBytes = (HEADER_BASE + HEADER_INTS * size) * Int32Array.BYTES_PER_ELEMENT;
  return Math.ceil(controlBytes / DATA_ALIGN) * DATA_ALIGN;
}

/** Bytes of the shared region for a group of `size` ranks with slots of `capacityFloats`. */
export function sharedMemoryGroupBytes(size: number, capacityFloats: number): number {
  return dataOffset(size) + size * capacityFloats * Float32Array.BYTES_PER_ELEMENT;
}

/** A fresh region and one descriptor per rank (post descriptors[r] to the worker of rank r). */
export function createSharedMemoryGroup(size: number, capacityFloats: number): SharedMemoryGroupDescriptor[] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`group size must be >= 1, got ${size}`);
  if (!Number.isInteger(capacityFloats) || capacityFloats < 1) {
    throw new RangeError(`capacityFloats must be >= 1, got ${capacityFloats}`);
  }
  const sab = new SharedArrayBuffer(sharedMemoryGroupBytes(size, capacityFloats));
  return Array.from({ length: size }, (_, rank) => ({ sab, size, rank, capacityFloats }));
}

/**
 * Ranks in different threads (worker_threads) sharing one SharedArrayBuffer: each rank copies
 * its buffer (a chunk at a time) into its own slot, a barrier, every rank sums / gathers all
 * slots by the halving tree over ranks (so all get bit-identical results), a barrier so no slot is overwritten
 * while another rank still reads it. Waiting blocks the thread (Atomics.wait): one rank per
 * thread, never two ranks of a group in the same thread.
 */
export class SharedMemoryGroup implements TensorParallelGroup {
  readonly size: number;
  readonly rank: number;
  readonly capacityFloats: number;
  private readonly control: Int32Array;
  private readonly slots: Float32Array[];

  constructor(
    descriptor: SharedMemoryGroupDescriptor,
    private readonly timeoutMs = DEFAULT_TIMEOUT_MS,
  ) {
    const { sab, size, rank, capacityFloats } = descriptor;
    if (!(Number.isInteger(rank) && rank >= 0 && rank < size))
      throw new RangeError(`rank ${rank} outside [0, ${size})`);
    if (sab.byteLength < sharedMemoryGroupBytes(size, capacityFloats)) {
      throw new RangeError(
        `shared region of ${sab.byteLength} bytes is too small for ${size} ranks x ${capacityFloats} floats`,
      );
    }
    this.size = size;
    this.rank = rank;
    this.capacityFloats = capacityFloats;
    this.control = new Int32Array(sab, 0, HEADER_BASE + HEADER_INTS * size);
    const base = dataOffset(size);
    this.slots = Array.from(
      { length: size },
      (_, r) =>
        new Float32Array(sab, base + r * capacityFloats * Float32Array.BYTES_PER_ELEMENT, capacityFloats),
    );
  }

  descriptor(): SharedMemoryGroupDescriptor {
    return {
      sab: this.control.buffer as SharedArrayBuffer,
      size: this.size,
      rank: this.rank,
      capacityFloats: this.capacityFloats,
    };
  }

  async allReduceSum(buf: Float32Array): Promise<void> {
    this.announce(OP_ALL_REDUCE, buf.length, buf.length);
    const cap = this.capacityFloats;
    const mine = this.slots[this.rank];
    const numRounds = Math.max(1, Math.ceil(buf.length / cap));
    for (let round = 0; round < numRounds; round++) {
      const offset = round * cap;
      const n = Math.min(cap, buf.length - offset);
      mine.set(buf.subarray(offset, offset + n));
      this.barrier();
      sumByHalvingTree(buf.subarray(offset, offset + n), this.slots, 0, n);
      this.barrier();
    }
  }

  async allGather(local: Float32Array, out: Float32Array): Promise<void> {
    const lengths = this.announce(OP_ALL_GATHER, local.length, out.length);
    const starts: number[] = [];
    lengths.reduce((start, length) => {
      starts.push(start);
      return start + length;
    }, 0);
    const cap = this.capacityFloats;
    const mine = this.slots[this.rank];
    const numRounds = Math.max(1, Math.ceil(Math.max(...lengths) / cap));
    for (let round = 0; round < numRounds; round++) {
      const offset = round * cap;
      mine.set(local.subarray(offset, Math.min(local.length, offset + cap)));
      this.barrier();
      lengths.forEach((length, r) => {
        const n = Math.max(0, Math.min(cap, length - offset));
        out.set(this.slots[r].subarray(0, n), starts[r] + offset);
      });
      this.barrier();
    }
  }

  /**
   * Publishes this rank's operation and lengths, waits for all ranks, and checks they agree
   * (every rank sees the same headers, so all ranks throw the same error together). Returns each
   * rank's buffer length. Headers are rewritten only after the operation's last barrier.
   */
  private announce(op: number, length: number, outLength: number): number[] {
    const header = HEADER_BASE + HEADER_INTS * this.rank;
    Atomics.store(this.control, header, op);
    Atomics.store(this.control, header + 1, length);
    Atomics.store(this.control, header + 2, outLength);
    this.barrier();
    const words = (i: number) =>
      Array.from({ length: this.size }, (_, r) =>
        Atomics.load(this.control, HEADER_BASE + HEADER_INTS * r + i),
      );
    const [ops, lengths, outLengths] = [words(0), words(1), words(2)];
    const differ = (values: number[]) => values.some((v) => v !== values[0]);
    // Worded from the headers alone, so every rank throws the same message.
    let problem: string | undefined;
    if (differ(ops)) {
      problem = `ranks called different collectives (${ops.map((o) => OP_NAMES[o] ?? o).join(', ')})`;
    } else if (op === OP_ALL_REDUCE && differ(lengths)) {
      problem = `ranks reduce different lengths [${lengths.join(', ')}]`;
    } else if (op === OP_ALL_GATHER && differ(outLengths)) {
      problem = `ranks expect different output lengths [${outLengths.join(', ')}]`;
    } else if (op === OP_ALL_GATHER && lengths.reduce((a, b) => a + b, 0) !== outLength) {
      const total = lengths.reduce((a, b) => a + b, 0);
      problem = `ranks contribute ${total} floats [${lengths.join(', ')}], out holds ${outLength}`;
    }
    if (problem !== undefined) {
      // Leave together, so the group stays usable for the next collective.
      this.barrier();
      throw new RangeError(`${differ(ops) ? 'collective' : OP_NAMES[op]}: ${problem}`);
    }
    return lengths;
  }

  /** Generation barrier: returns once every rank has arrived in this generation. */
  private barrier(): void {
    const generation = Atomics.load(this.control, GENERATION);
    if (Atomics.add(this.control, ARRIVED, 1) === this.size - 1) {
      Atomics.store(this.control, ARRIVED, 0);
      Atomics.add(this.control, GENERATION, 1);
      Atomics.notify(this.control, GENERATION);
      return;
    }
    const deadline = Date.now() + this.timeoutMs;
    while (Atomics.load(this.control, GENERATION) === generation) {
      const left = deadline - Date.now();
      if (left <= 0 || Atomics.wait(this.control, GENERATION, generation, left) === 'timed-out') {
        if (Atomics.load(this.control, GENERATION) !== generation) return;
        throw new Error(`rank ${this.rank}: peers did not reach the barrier within ${this.timeoutMs} ms`);
      }
    }
  }
}
