#pragma once
#include <cstddef>
#include <cstdint>

#include "simd.h"

namespace seesaw {

void rmsNorm(float* out, const float* x, const float* weight, size_t rows, size_t cols, float eps);
void addInPlace(float* x, const float* y, size_t n);
void rope(float* x, size_t numTokens, size_t numHeads, size_t headDim, size_t rowStride, const float* cos,
          const float* sin);
void siluMul(float* out, const float* gateUp, size_t rows, size_t intermediate);
void embed(float* out, const void* table, DType dtype, size_t hidden, const int32_t* ids, size_t numIds);
// Writes token t of k/v (head h at t*rowStride + h*headDim) into cache slot slots[t]; caches of
// kvType elements (f32 copied, bf16 / f16 rounded to nearest even).
void writeKv(void* kCache, void* vCache, DType kvType, const float* k, const float* v, size_t rowStride,
             const int32_t* slots, size_t numTokens, size_t numKvHeads, size_t headDim, size_t blockSize);

}  // namespace seesaw
