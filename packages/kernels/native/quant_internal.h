// Shared by the quantized matmul drivers (quant_matmul.cc: ggml blocks, quant_packed.cc: packed
// tiles): activation quantization, f16 scales and the per-output reduction (quant_rows.cc).
#pragma once
#include <cstddef>
#include <cstdint>

namespace seesaw {

float halfToFloat(const uint8_t* p);
// One activation row to int8 blocks: scales, codes and per-block code sums (for Q4_0's offset).
void quantizeRow(const float* x, size_t k, int8_t* q, float* d, int32_t* sums);
// One activation row's 8 outputs of a tile: p[b] = (d_w * d_x) * isum lane-wise, then the tree.
// dw: block b's 8 scales at dw + b * dwStride.
void combineRow(float* out, size_t count, const float* dw, size_t dwStride, const float* dx, const int32_t* isums,
                float* partial, size_t nb);
// The halving tree over nb blocks of 16 column partials (partial[b * 16 + c]); the first
// `count` of the 16 results to out.
void halvingTree16(float* out, size_t count, const float* partial, size_t nb);

}  // namespace seesaw
