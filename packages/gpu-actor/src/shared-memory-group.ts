import { sumByHalvingTree, type TensorParallelGroup } from './tensor-parallel-group.ts';

/** Everything a rank needs to join a group; structured-cloneable, so it can be posted to a worker. */
export interface SharedMemoryGroupDescriptor {
  sab: SharedArrayBuffer;
  size: number;
  rank: number;
  /** Floats of each rank's slot: larger buffers go through in chunks of this many. */
  capacityFloats: number;
  /**
   * How long a rank arriving early at a barrier polls before it parks in Atomics.wait (default
   * DEFAULT_SPIN_MICROS); 0 parks at once.
   */
  spinMicros?: number;
}

// Int32 control words. The barrier: ARRIVED counts ranks in the current generation; the last to
// arrive resets it and bumps GENERATION, which the others wait on (Atomics.wait/notify).
const ARRIVED = 0;
const GENERATION = 1;
// Everything else comes twice, one copy per barrier parity (see SharedMemoryGroup): per parity
// and rank, HEADER_INTS words (the collective it called and its buffer lengths, so every rank
// can check that all ranks are in the same collective with matching sizes), and a data slot.
const HEADER_BASE = 2;
const HEADER_INTS = 3;
const NUM_PARITIES = 2;
const OP_ALL_REDUCE = 1;
const OP_ALL_GATHER = 2;
const OP_NAMES: Record<number, string> = { [OP_ALL_REDUCE]: 'allReduceSum', [OP_ALL_GATHER]: 'allGather' };
/** Data slots start on a cache line. */
const DATA_ALIGN = 64;
const DEFAULT_TIMEOUT_MS = 60_000;
/**
 * A T2 decode layer's two halves are each a millisecond or less, so the ranks usually arrive
 * within tens of microseconds of each other; a parked rank instead waits for a futex wake-up and
 * a time slice, which on a loaded 2-core machine often costs more than the gap itself. Polling
 * this long first catches most arrivals while bounding the CPU taken from a peer that is late
 * because it has no core (see bench:barrier-spin for the measured figures).
 */
export const DEFAULT_SPIN_MICROS = 20;
/** Polls between clock reads while spinning. */
const SPIN_CHECKS_PER_CLOCK_READ = 64;

function numControlInts(size: number): number {
  return HEADER_BASE + NUM_PARITIES * HEADER_INTS * size;
}

function dataOffset(size: number): number {
  const controlBytes = numControlInts(size) * Int32Array.BYTES_PER_ELEMENT;
  return Math.ceil(controlBytes / DATA_ALIGN) * DATA_ALIGN;
}

/** Bytes of the shared region for a group of `size` ranks with slots of `capacityFloats`. */
export function sharedMemoryGroupBytes(size: number, capacityFloats: number): number {
  return dataOffset(size) + NUM_PARITIES * size * capacityFloats * Float32Array.BYTES_PER_ELEMENT;
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

/** What a rank publishes in a collective's first round. */
interface RoundHeader {
  op: number;
  length: number;
  outLength: number;
}

/**
 * Ranks in different threads (worker_threads) sharing one SharedArrayBuffer. Each round of a
 * collective (a buffer over the slot's capacity goes through in several) is: every rank copies
 * its chunk into its own slot, one barrier, every rank sums / gathers all slots (the halving tree
 * over ranks, so all get bit-identical results). The first round also publishes each rank's
 * collective and lengths beside its chunk and checks them after that barrier.
 *
 * One barrier a round, not three: slots and headers come twice and rounds alternate between the
 * two (the parity). A rank writing round k + 1's slot cannot disturb a rank still reading round
 * k's (the other parity), and it can only come back to round k's parity at round k + 2, after
 * passing round k + 1's barrier, which every rank reaches only once done reading round k. A T2
 * decode step all-reduces twice a layer; each barrier is a futex wake-up, which on a loaded
 * machine can wait for a time slice, so these were most of a TP step's waiting.
 *
 * Waiting blocks the thread (Atomics.wait): one rank per thread, never two ranks of a group in
 * the same thread. Every rank must call the same collectives in the same order, so every rank
 * passes the same rounds and its parity stays in step with the others'.
 */
export class SharedMemoryGroup implements TensorParallelGroup {
  readonly size: number;
  readonly rank: number;
  readonly capacityFloats: number;
  readonly spinMicros: number;
  private readonly control: Int32Array;
  /** slots[parity][rank]. */
  private readonly slots: Float32Array[][];
  /** The parity of this rank's next round. */
  private parity = 0;

  constructor(
    descriptor: SharedMemoryGroupDescriptor,
    private readonly timeoutMs = DEFAULT_TIMEOUT_MS,
  ) {
    const { sab, size, rank, capacityFloats, spinMicros = DEFAULT_SPIN_MICROS } = descriptor;
    if (!(Number.isFinite(spinMicros) && spinMicros >= 0))
      throw new RangeError(`spinMicros must be a number >= 0, got ${spinMicros}`);
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
    this.spinMicros = spinMicros;
    this.control = new Int32Array(sab, 0, numControlInts(size));
    const slotBytes = capacityFloats * Float32Array.BYTES_PER_ELEMENT;
    this.slots = Array.from({ length: NUM_PARITIES }, (_, parity) =>
      Array.from(
        { length: size },
        (_, r) => new Float32Array(sab, dataOffset(size) + (parity * size + r) * slotBytes, capacityFloats),
      ),
    );
  }

  descriptor(): SharedMemoryGroupDescriptor {
    return {
      sab: this.control.buffer as SharedArrayBuffer,
      size: this.size,
      rank: this.rank,
      capacityFloats: this.capacityFloats,
      spinMicros: this.spinMicros,
    };
  }

  async allReduceSum(buf: Float32Array): Promise<void> {
    const cap = this.capacityFloats;
    const numRounds = Math.max(1, Math.ceil(buf.length / cap));
    for (let round = 0; round < numRounds; round++) {
      const offset = round * cap;
      const n = Math.min(cap, buf.length - offset);
      const header = round === 0 ? { op: OP_ALL_REDUCE, length: buf.length, outLength: buf.length } : null;
      const slots = this.exchange(buf.subarray(offset, offset + n), header);
      sumByHalvingTree(buf.subarray(offset, offset + n), slots, 0, n);
    }
  }

  async allGather(local: Float32Array, out: Float32Array): Promise<void> {
    const cap = this.capacityFloats;
    const header = { op: OP_ALL_GATHER, length: local.length, outLength: out.length };
    let lengths: number[] = [];
    const starts: number[] = [];
    // The rounds are counted from every rank's length, known once the first round's headers are.
    for (let round = 0, numRounds = 1; round < numRounds; round++) {
      const offset = round * cap;
      const chunk = local.subarray(Math.min(local.length, offset), offset + cap);
      const slots = this.exchange(chunk, round === 0 ? header : null);
      if (round === 0) {
        lengths = this.checkedLengths();
        lengths.reduce((start, length) => {
          starts.push(start);
          return start + length;
        }, 0);
        numRounds = Math.max(1, Math.ceil(Math.max(...lengths) / cap));
      }
      lengths.forEach((length, r) => {
        const n = Math.max(0, Math.min(cap, length - offset));
        out.set(slots[r].subarray(0, n), starts[r] + offset);
      });
    }
  }

  /**
   * One round: this rank's chunk (and, in a collective's first round, its header) into this
   * parity's slot, the barrier, and the parity's slots of every rank, to read until the next
   * round. A first round's headers are checked before anything is read.
   */
  private exchange(chunk: Float32Array, header: RoundHeader | null): Float32Array[] {
    const parity = this.parity;
    this.parity ^= 1;
    if (header) {
      const at = this.headerIndex(parity, this.rank);
      Atomics.store(this.control, at, header.op);
      Atomics.store(this.control, at + 1, header.length);
      Atomics.store(this.control, at + 2, header.outLength);
    }
    this.slots[parity][this.rank].set(chunk);
    this.barrier();
    if (header) this.checkHeaders(parity, header.op, header.outLength);
    return this.slots[parity];
  }

  private headerIndex(parity: number, rank: number): number {
    return HEADER_BASE + HEADER_INTS * (parity * this.size + rank);
  }

  /** Word `i` of every rank's header in `parity`. */
  private headerWords(parity: number, i: number): number[] {
    return Array.from({ length: this.size }, (_, r) =>
      Atomics.load(this.control, this.headerIndex(parity, r) + i),
    );
  }

  /** Each rank's buffer length, from the headers of the round just exchanged (checked by then). */
  private checkedLengths(): number[] {
    return this.headerWords(this.parity ^ 1, 1);
  }

  /**
   * Throws when the ranks are not in the same collective with matching sizes. Every rank sees the
   * same headers, so all ranks throw the same error after the same round, their parities still in
   * step: the group stays usable for the next collective.
   */
  private checkHeaders(parity: number, op: number, outLength: number): void {
    const [ops, lengths, outLengths] = [0, 1, 2].map((i) => this.headerWords(parity, i));
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
    if (problem !== undefined)
      throw new RangeError(`${differ(ops) ? 'collective' : OP_NAMES[op]}: ${problem}`);
  }

  /**
   * Generation barrier: returns once every rank has arrived in this generation. An early rank
   * polls for spinMicros, then parks (Atomics.wait); the last rank always notifies, since a
   * peer may have parked.
   */
  private barrier(): void {
    const generation = Atomics.load(this.control, GENERATION);
    if (Atomics.add(this.control, ARRIVED, 1) === this.size - 1) {
      Atomics.store(this.control, ARRIVED, 0);
      Atomics.add(this.control, GENERATION, 1);
      Atomics.notify(this.control, GENERATION);
      return;
    }
    if (this.spinUntilNextGeneration(generation)) return;
    const deadline = Date.now() + this.timeoutMs;
    while (Atomics.load(this.control, GENERATION) === generation) {
      const left = deadline - Date.now();
      if (left <= 0 || Atomics.wait(this.control, GENERATION, generation, left) === 'timed-out') {
        if (Atomics.load(this.control, GENERATION) !== generation) return;
        throw new Error(`rank ${this.rank}: peers did not reach the barrier within ${this.timeoutMs} ms`);
      }
    }
  }

  /** Polls GENERATION for up to spinMicros; true once it has moved past `generation`. */
  private spinUntilNextGeneration(generation: number): boolean {
    if (this.spinMicros <= 0) return false;
    const until = performance.now() + this.spinMicros / 1000;
    do {
      for (let i = 0; i < SPIN_CHECKS_PER_CLOCK_READ; i++) {
        if (Atomics.load(this.control, GENERATION) !== generation) return true;
      }
    } while (performance.now() < until);
    return false;
  }
}
