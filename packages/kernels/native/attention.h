#pragma once
#include <cstddef>
#include <cstdint>

#include "simd.h"

namespace seesaw {

struct AttentionShape {
  size_t numSeqs;
  size_t numHeads;
  size_t numKvHeads;
  size_t headDim;
  size_t blockSize;
  size_t maxBlocksPerSeq;
};

// Paged causal attention with online softmax; see the TypeScript docs of pagedAttention. The
// caches hold kvType elements (f32, bf16 or f16), converted to f32 exactly as they are loaded,
// so a 16-bit cache gives the f32 cache's result on the same (rounded) values.
// Assumes arguments were validated (block ids in range, contextLens >= queries per sequence).
void pagedAttention(float* out, const float* q, size_t qRowStride, const void* kCache, const void* vCache,
                    DType kvType, const int32_t* queryStart, const int32_t* contextLens, const int32_t* blockTables,
                    const AttentionShape& shape, float scale);

}  // namespace seesaw
