#pragma once
#include <cstddef>
#include <cstdint>

namespace seesaw {

void argmaxRows(int32_t* result, const float* logits, size_t rows, size_t n);
// See the TypeScript docs of sampleRow; temperature > 0 and uniform in [0, 1) are checked by the caller.
int32_t sampleRow(const float* logits, size_t n, double temperature, int64_t topK, double topP, double uniform);

void f32ToBf16(const float* src, uint16_t* dst, size_t n);
void f32ToF16(const float* src, uint16_t* dst, size_t n);

}  // namespace seesaw
