/**
 * A forward pass's activation and metadata buffers, kept from step to step instead of created
 * and destroyed per step (each creation is a driver allocation and a zero fill). take(name,
 * length) hands back the buffer last taken under that name when it holds `length` floats, else
 * replaces it with one that does: the pool only grows, to the largest step seen.
 *
 * Reuse is safe because a device's steps run one at a time and the queue runs submissions in
 * order: a step's dispatches writing a buffer come after every earlier step's reads of it. A
 * reused buffer holds the last step's values, not zeros: every kernel writes each output
 * element it is asked for, and reads only the elements its shape names.
 */
import type { WebGpuKernels } from './webgpu-kernels.ts';
import type { GpuTensor } from './webgpu-stream.ts';

export class StepBufferPool {
  private readonly held = new Map<string, GpuTensor>();
  /** Buffers created so far (a test's measure of reuse). */
  private created = 0;

  constructor(private readonly kernels: WebGpuKernels) {}

  get numCreated(): number {
    return this.created;
  }

  /** The buffer named `name`, at least `length` floats, viewed as exactly `length`. Not to be destroyed by the caller. */
  take(name: string, length: number): GpuTensor {
    let buffer = this.held.get(name);
    if (buffer === undefined || buffer.length < length) {
      buffer?.buffer.destroy(); // deferred by WebGPU until submitted work that uses it ends
      buffer = this.kernels.allocate(length);
      this.held.set(name, buffer);
      this.created++;
    }
    return { buffer: buffer.buffer, length };
  }

  /**
   * The buffer named `name` holding `data` (a step's metadata: token ids, RoPE rows, slots, block
   * tables, a previous stage's hidden state). Pending dispatches are submitted first, so the write
   * lands after every earlier use of the buffer and before this step's dispatches.
   */
  upload(name: string, data: Float32Array | Int32Array): GpuTensor {
    this.kernels.flush();
    const tensor = this.take(name, data.length);
    this.kernels.write(tensor, data);
    return tensor;
  }

  destroy(): void {
    for (const buffer of this.held.values()) buffer.buffer.destroy();
    this.held.clear();
  }
}
