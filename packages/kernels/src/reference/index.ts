// Float64 reference kernels: the test oracle for the native code, written independently of it.
export type { AttentionBatch, KvLayout } from './attention.ts';
export { cacheOffset, pagedAttention, writeKv } from './attention.ts';
export { add, embed, rmsNorm, rope, siluMul } from './elementwise.ts';
export { bf16ToNumber, f16ToNumber, numberToBf16, numberToF16 } from './half-precision.ts';
export { matmul } from './linear.ts';
export { dequantizeBlocks } from './quantized.ts';
export type { SamplingCandidates } from './sampling.ts';
export { argmaxRows, sampleRow, samplingCandidates } from './sampling.ts';
