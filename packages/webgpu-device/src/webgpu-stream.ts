/**
 * One WebGPU device's command stream: storage buffers (upload, allocate, read back, write, copy),
 * dispatches encoded into one command encoder with their pipelines and uniform parameters kept
 * for reuse, and submission (flush) with the validation errors of submitted work raised at the
 * next read. The forward-pass kernels (webgpu-kernels.ts) are dispatches on it.
 */
import type { Weight, WeightDType } from '@seesaw/kernels';
import { ReadStagingPool } from './read-staging-pool.ts';

/** A tensor living in a device storage buffer: f32 activations, or a weight in its storage dtype. */
export interface GpuTensor {
  buffer: GPUBuffer;
  /** Elements (not bytes). */
  length: number;
}

/** The weight types the WGSL kernels read (quantized GGUF types are not on the GPU yet). */
export type GpuWeightDType = Extract<WeightDType, 'f32' | 'f16' | 'bf16'>;

export interface GpuWeight {
  dtype: GpuWeightDType;
  rows: number;
  cols: number;
  /** Leaves of the K reduction (1, 2, 4 or 8): the CPU weight's `leaves`, see matmulSource. */
  leaves: number;
  tensor: GpuTensor;
}

/** Workgroups a dispatch may have along one dimension (WebGPU's default limit). */
export const MAX_GROUPS_PER_DIM = 65535;
/**
 * Distinct parameter blocks kept for reuse; past this many the cache is emptied at the next
 * submission (a model's steps need a few per kernel and shape: decode steps of one batch size
 * reuse the same ones every step).
 */
const MAX_CACHED_PARAMS = 4096;

export class WebGpuStream {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private encoder: GPUCommandEncoder | null = null;
  /**
   * Uniform parameter buffers by content. They are never written after creation, so a dispatch
   * may bind one another dispatch (of any step) bound: a step of a shape seen before creates none.
   */
  private readonly paramBuffers = new Map<string, GPUBuffer>();
  private readonly readStagings: ReadStagingPool;
  /** Parameter buffers created so far (tests measure reuse with it). */
  private paramBuffersCreated = 0;
  /** Validation errors of submitted work, checked at the next read (WebGPU reports them asynchronously). */
  private pendingErrors: Array<Promise<GPUError | null>> = [];

  constructor(readonly device: GPUDevice) {
    this.readStagings = new ReadStagingPool(device);
  }

  /** Copies host data into a new storage buffer (padded to 4 bytes: 16-bit weights pack two per word). */
  upload(data: Float32Array | Uint16Array | Int32Array): GpuTensor {
    const bytes = Math.max(4, Math.ceil(data.byteLength / 4) * 4);
    const buffer = this.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
      mappedAtCreation: true,
    });
    new Uint8Array(buffer.getMappedRange()).set(
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
    buffer.unmap();
    return { buffer, length: data.length };
  }

  /** A zeroed f32 storage buffer of length elements. */
  allocate(length: number): GpuTensor {
    const buffer = this.device.createBuffer({
      size: Math.max(4, length * 4),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    });
    return { buffer, length };
  }

  uploadWeight(w: Weight): GpuWeight {
    if (w.dtype !== 'f32' && w.dtype !== 'f16' && w.dtype !== 'bf16') {
      throw new TypeError(
        `weight dtype ${w.dtype} is not supported by the WebGPU backend (f32, f16, bf16 only)`,
      );
    }
    if (w.data instanceof Uint8Array)
      throw new TypeError('byte-packed weights are not supported by the WebGPU backend');
    if (w.data.length !== w.rows * w.cols) {
      throw new RangeError(`weight holds ${w.data.length} elements, not ${w.rows} x ${w.cols}`);
    }
    if ((w.dtype === 'f32') !== w.data instanceof Float32Array) {
      throw new TypeError(`weight dtype ${w.dtype} does not match its ${w.data.constructor.name} data`);
    }
    const leaves = w.leaves ?? 1;
    if (![1, 2, 4, 8].includes(leaves) || w.cols % leaves !== 0) {
      throw new RangeError(`weight leaves ${leaves} must be 1, 2, 4 or 8 and divide its ${w.cols} columns`);
    }
    return { dtype: w.dtype, rows: w.rows, cols: w.cols, leaves, tensor: this.upload(w.data) };
  }

  /** Submits the pending dispatches and reads length f32 values of a tensor back to the host. */
  async read(tensor: GpuTensor, length = tensor.length): Promise<Float32Array> {
    const staging = this.allocateReadStaging(length);
    this.copy(staging, 0, tensor, 0, length);
    return await this.readStaging(staging);
  }

  /**
   * A buffer of at least length f32 values that the host maps to read (from the read staging
   * pool): copy() into it in stream order, then readStaging(). Not bindable in a dispatch.
   */
  allocateReadStaging(length: number): GpuTensor {
    return { buffer: this.readStagings.take(length * 4), length };
  }

  /** Read staging buffers created so far: steady steps reuse them. */
  get numReadStagingsCreated(): number {
    return this.readStagings.numCreated;
  }

  /**
   * Submits the pending work and resolves, once the device has done everything submitted so
   * far, with a copy of the staging buffer's first length floats; the buffer goes back to the
   * pool unmapped (or is destroyed when the read failed). Other work may be encoded and
   * submitted while it waits (that is how a step's KV write-backs overlap its compute).
   */
  async readStaging(staging: GpuTensor): Promise<Float32Array> {
    let isReusable = false;
    try {
      this.flush();
      await this.throwSubmittedErrors();
      await staging.buffer.mapAsync(GPUMapMode.READ);
      const floats = new Float32Array(staging.buffer.getMappedRange().slice(0, staging.length * 4));
      staging.buffer.unmap();
      isReusable = true;
      return floats;
    } finally {
      if (isReusable) this.readStagings.give(staging.buffer);
      else staging.buffer.destroy();
    }
  }

  /**
   * Overwrites the start of a tensor with host data. Lands before the next submission: call it
   * with nothing pending (after a read), so it cannot overtake encoded dispatches.
   */
  write(tensor: GpuTensor, data: Float32Array | Int32Array): void {
    need(data.length <= tensor.length, `write of ${data.length} values into a tensor of ${tensor.length}`);
    need(this.encoder === null, 'write with dispatches pending: it would land before them');
    this.device.queue.writeBuffer(tensor.buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Parameter buffers created so far: a step whose kernels and shapes were seen before adds none. */
  get numParamBuffersCreated(): number {
    return this.paramBuffersCreated;
  }

  /** Copies length floats from src[srcStart..] to dst[dstStart..] in stream order. */
  copy(dst: GpuTensor, dstStart: number, src: GpuTensor, srcStart: number, length: number): void {
    need(
      srcStart + length <= src.length && dstStart + length <= dst.length,
      `copy of ${length} floats out of range`,
    );
    this.encoderNow().copyBufferToBuffer(src.buffer, srcStart * 4, dst.buffer, dstStart * 4, length * 4);
  }

  flush(): void {
    if (this.encoder === null) return;
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.pendingErrors.push(this.device.popErrorScope());
    if (this.paramBuffers.size > MAX_CACHED_PARAMS) {
      // Nothing is pending now; destroying a buffer submitted work still reads is deferred by
      // WebGPU until that work ends.
      for (const buffer of this.paramBuffers.values()) buffer.destroy();
      this.paramBuffers.clear();
    }
  }

  /** Submits the pending dispatches and reads length i32 values back (sampled ids). */
  async readInt32(tensor: GpuTensor, length = tensor.length): Promise<Int32Array> {
    const floats = await this.read(tensor, length);
    return new Int32Array(floats.buffer, floats.byteOffset, length);
  }

  /** A uniform buffer holding `values` (u32 words), kept by content for reuse. */
  protected params(values: ArrayLike<number> | Uint32Array): GpuTensor {
    const data = values instanceof Uint32Array ? values : Uint32Array.from(values);
    const key = data.join(',');
    let buffer = this.paramBuffers.get(key);
    if (!buffer) {
      buffer = this.device.createBuffer({
        size: data.byteLength,
        usage: GPUBufferUsage.UNIFORM,
        mappedAtCreation: true,
      });
      new Uint32Array(buffer.getMappedRange()).set(data);
      buffer.unmap();
      this.paramBuffers.set(key, buffer);
      this.paramBuffersCreated++;
    }
    return { buffer, length: data.length };
  }

  private pipeline(source: string): GPUComputePipeline {
    let pipeline = this.pipelines.get(source);
    if (!pipeline) {
      const module = this.device.createShaderModule({ code: source });
      pipeline = this.device.createComputePipeline({
        layout: 'auto',
        compute: { module, entryPoint: 'main' },
      });
      this.pipelines.set(source, pipeline);
    }
    return pipeline;
  }

  /** Encodes one dispatch of the WGSL `source` over `tensors` (bindings 0..) into the current encoder. */
  protected dispatch(source: string, tensors: GpuTensor[], groupsX: number, groupsY: number): void {
    const pipeline = this.pipeline(source);
    const bindGroup = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: tensors.map((t, binding) => ({ binding, resource: { buffer: t.buffer } })),
    });
    const pass = this.encoderNow().beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(groupsX, groupsY);
    pass.end();
  }

  private encoderNow(): GPUCommandEncoder {
    if (this.encoder === null) {
      // Without a scope an invalid command buffer is only a console warning and reads return zeros.
      this.device.pushErrorScope('validation');
      this.encoder = this.device.createCommandEncoder();
    }
    return this.encoder;
  }

  private async throwSubmittedErrors(): Promise<void> {
    // Taken before awaiting: reads that wait at once (write-backs beside a step's read) each check their own.
    const errors = await Promise.all(this.pendingErrors.splice(0));
    const first = errors.find((e) => e !== null);
    if (first) throw new Error(`WebGPU rejected a submission: ${first.message}`);
  }
}

/** Throws a RangeError with `message` unless `condition` holds (WGSL would clamp a bad shape silently). */
export function need(condition: boolean, message: string): void {
  if (!condition) throw new RangeError(message);
}
