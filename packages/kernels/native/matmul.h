#pragma once
#include <cstddef>
#include <cstdint>

#include "simd.h"

namespace seesaw {

// The instruction-set paths of the canonical matrix product; every path gives the same bits.
enum class MatmulPath : int { Avx2 = 0, Avx512 = 1 };
constexpr size_t kMaxMatmulLeaves = 8;

bool matmulPathSupported(MatmulPath path);
const char* matmulPathName(MatmulPath path);
// AVX-512 where the CPU has it, else AVX2; SEESAW_MATMUL_KERNEL=avx2|avx512 forces a supported one.
MatmulPath defaultMatmulPath();

// out[m][n] = sum_k x[m][k] * w[n][k] (+ bias[n]); w is [n][k] row-major in its storage dtype.
// K is reduced as `leaves` equal leaves (1..kMaxMatmulLeaves, dividing k) combined by the
// halving tree: a TP rank of a row-parallel weight passes leaves = 8 / T to reproduce, after
// the all-reduce, the single device's bits with leaves = 8.
void matmul(float* out, const float* x, size_t m, const void* w, DType dtype, size_t n, size_t k, size_t leaves,
            const float* bias, MatmulPath path);

}  // namespace seesaw
