#pragma once
#include <cstddef>
#include <cstdint>

#include "simd.h"

namespace seesaw {

// out[m][n] = sum_k x[m][k] * w[n][k] (+ bias[n]); w is [n][k] row-major in its storage dtype.
void matmul(float* out, const float* x, size_t m, const void* w, DType dtype, size_t n, size_t k,
            const float* bias);

}  // namespace seesaw
