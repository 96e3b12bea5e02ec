// The ISA-specific entry points of the canonical matrix product; matmul.cc picks one at run time.
#pragma once
#include <cstddef>

#include "simd.h"

namespace seesaw {

void matmulAvx2(float* out, const float* x, size_t m, const void* w, DType dtype, size_t n, size_t k, size_t leaves,
                const float* bias);
void matmulAvx512(float* out, const float* x, size_t m, const void* w, DType dtype, size_t n, size_t k,
                  size_t leaves, const float* bias);

}  // namespace seesaw
