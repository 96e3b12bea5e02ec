#pragma once
#include <cstddef>

#include "simd.h"

namespace seesaw {

// Many-row product (prefill, large decode batches): same contract as matmul().
void matmulPacked(float* out, const float* x, size_t m, const void* w, DType dtype, size_t n, size_t k,
                  const float* bias);

}  // namespace seesaw
