/**
 * The host-readable (MAP_READ) staging buffers reads copy into, kept for reuse instead of created
 * and destroyed per read (a step reads back its sampled ids, and under TP each layer's partial
 * sums twice). Sizes are rounded up to a power of two so that reads of nearby lengths share
 * buffers; reads in flight at once each hold their own.
 */

/** Free buffers kept per size; more given back than this are destroyed. */
const MAX_FREE_PER_SIZE = 8;

function bucketBytes(numBytes: number): number {
  return Math.max(4, 2 ** Math.ceil(Math.log2(Math.max(numBytes, 1))));
}

export class ReadStagingPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  private created = 0;

  constructor(private readonly device: GPUDevice) {}

  /** Staging buffers created so far (tests measure reuse with it). */
  get numCreated(): number {
    return this.created;
  }

  /** An unmapped staging buffer of at least `numBytes`, for one read. */
  take(numBytes: number): GPUBuffer {
    const size = bucketBytes(numBytes);
    const reused = this.free.get(size)?.pop();
    if (reused) return reused;
    this.created++;
    return this.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** Takes back a buffer `take` gave, unmapped again, for a later read. */
  give(buffer: GPUBuffer): void {
    const list = this.free.get(buffer.size) ?? [];
    if (list.length >= MAX_FREE_PER_SIZE) {
      buffer.destroy();
      return;
    }
    list.push(buffer);
    this.free.set(buffer.size, list);
  }

  destroy(): void {
    for (const list of this.free.values()) for (const buffer of list) buffer.destroy();
    this.free.clear();
  }
}
