#pragma once
#include <cstddef>
#include <cstdint>

namespace seesaw {

struct AttentionShape {
  size_t numSeqs;
  size_t numHeads;
  size_t numKvHeads;
  size_t headDim;
  size_t blockSize;
  size_t maxBlocksPerSeq;
};

// Paged causal attention with online softmax; see the TypeScript docs of pagedAttention.
// Assumes arguments were validated (block ids in range, contextLens >= queries per sequence).
void pagedAttention(float* out, const float* q, size_t qRowStride, const float* kCache, const float* vCache,
                    const int32_t* queryStart, const int32_t* contextLens, const int32_t* blockTables,
                    const AttentionShape& shape, float scale);

}  // namespace seesaw
