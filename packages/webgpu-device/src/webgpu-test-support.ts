// Test support for the WebGPU backend (imported only by tests): the shared device, or the
// printed reason the GPU tests skip; seeded random data from the kernel tests' support.
import { type GpuContext, openGpu } from './gpu-context.ts';

/** The device for this test file, or null after printing why the GPU tests are skipped. */
export async function gpuForTests(): Promise<GpuContext | null> {
  const opened = await openGpu();
  if (opened.ok) return opened.context;
  console.log(`skipping WebGPU tests: ${opened.reason}`);
  return null;
}

// Seeded data and the error measure are the kernel tests' own: one definition for both backends.
export {
  makeRng,
  randomF32,
  randomWeight,
  relativeError,
  testSeed,
} from '../../kernels/test/test-support.ts';

/** Issue 10's bar for GPU outputs: within 1e-3 of max|ref| of the float64 reference. */
export const GPU_TOLERANCE = 1e-3;

/** A float64 copy, as the reference kernels take. */
export const f64 = (values: ArrayLike<number>): Float64Array => Float64Array.from(values);
