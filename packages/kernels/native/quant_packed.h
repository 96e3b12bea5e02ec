// Packed Q8_0 / Q4_0 weights: the layout the devices hold (re-laid once at load) and the tile
// kernels that run straight from it. quant_packed.cc: layout, scalar kernel, driver;
// quant_packed_x86.cc: the SIMD kernels.
//
// Layout: tiles of 16 weight rows (the last padded with zero rows); per tile, one record per
// 32-element block, read in one stream:
//   codes   [g][c<16][4] bytes   Q8_0: 8 groups of 4 int8 codes (512 B); Q4_0: 4 groups of the
//                                raw nibble bytes (256 B): low nibbles are group g, high g + 4
//   scales  [16] f16             the rows' ggml scales, bit for bit (32 B)
//   sums    [16] int16           Q8_0 only: each row's code sum (32 B), for the unsigned-x trick
// So one 512-bit load holds group g of all 16 rows (32-bit lane c = row c's 4 codes), and a
// 4-byte group of x broadcast to every lane makes one byte-dot instruction add it to all 16.
#pragma once
#include <cstddef>
#include <cstdint>

#include "quant_matmul.h"

namespace seesaw {

constexpr size_t kPackedTileRows = 16;
// Activation rows one kernel call works on (their block dot products share each weight load).
constexpr size_t kPackedRowBlock = 4;

inline size_t packedCodeBytes(QuantType type) { return type == QuantType::Q8_0 ? 512 : 256; }
inline size_t packedRecordBytes(QuantType type) {
  return packedCodeBytes(type) + 32 + (type == QuantType::Q8_0 ? 32 : 0);
}

// Activation rows quantized per block (quantizeRow); `biased` = codes + 128 as unsigned bytes
// (Q8_0 on VNNI: vpdpbusd needs one unsigned operand). Pointers at the first of the rows.
struct QuantizedRows {
  const int8_t* q;
  const uint8_t* biased;
  const float* d;
  const int32_t* sums;
  size_t k;
};

// One tile's outputs for `rows` (1..kPackedRowBlock) activation rows: the block partials
//   partial[(r * nb + b) * 16 + c] = f32(f32(d_w[b][c] * d_x[r][b]) * f32(isum[r][b][c]))
// (isum the exact int32 block dot product; the contract of quant_matmul.cc), then per row the
// halving tree over b, whose first `count` columns go to out + r * outStride.
// `partial` is scratch of kPackedRowBlock * nb * 16 floats.
using PackedTileKernel = void (*)(float* out, size_t outStride, size_t count, float* partial, const uint8_t* tile,
                                  size_t nb, const QuantizedRows& x, size_t rows);
PackedTileKernel packedTileKernelFor(QuantType type, QuantPath path);
PackedTileKernel x86PackedTileKernel(QuantType type, QuantPath path);

}  // namespace seesaw
