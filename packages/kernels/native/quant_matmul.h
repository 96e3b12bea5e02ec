// Matmul with ggml block-quantized weights (Q8_0, Q4_0): activations quantized per 32-element
// block to int8, exact int32 dot products per block, f32 block scales. See quant_matmul.cc for
// the reduction order (identical on every instruction-set path).
#pragma once
#include <cstddef>
#include <cstdint>

namespace seesaw {

enum class QuantType { Q8_0 = 0, Q4_0 = 1 };
enum class QuantPath { Scalar = 0, Avx2 = 1, AvxVnni = 2, Avx512Vnni = 3 };
constexpr int kNumQuantPaths = 4;
constexpr size_t kQuantBlock = 32;

// Bytes of one weight block: f16 scale + 32 int8 (Q8_0) or 16 bytes of nibbles (Q4_0).
size_t quantBlockBytes(QuantType type);
const char* quantPathName(QuantPath path);
// Whether this CPU runs the path (CPUID at run time; the build itself runs everywhere x86-64-v3).
bool quantPathSupported(QuantPath path);
// The fastest supported path, or the one SEESAW_QUANT_KERNEL names (scalar|avx2|avxvnni|avx512vnni).
QuantPath defaultQuantPath();

// out[m][n] = x[m][k] . W[n][k]^T, W as n rows of k/32 blocks. k % 32 == 0.
void quantMatmul(float* out, const float* x, size_t m, QuantType type, const uint8_t* w, size_t n, size_t k,
                 QuantPath path);

// Weight rows whose dot products one call computes together (one int32 lane each).
constexpr size_t kQuantTileRows = 8;

// Integer dot products of 8 weight rows' blocks against one activation row's int8 blocks:
// isums[b * 8 + c] = sum_i w_c,b[i] * xq_b[i] (Q4_0: w = nibble - 8); xsums[b] = sum_i xq_b[i].
using QuantBlockDots = void (*)(int32_t* isums, const uint8_t* const* wrows, const int8_t* xq,
                                const int32_t* xsums, size_t nblocks);
QuantBlockDots quantBlockDotsFor(QuantType type, QuantPath path);

// Many activation rows: a tile's blocks unpacked once into codes[b][g][c][4] (group g = codes
// 4g..4g+3; Q8_0: the int8 codes, Q4_0: the unsigned nibbles 0..15) with Q8_0 code sums
// wsums[b][c], then per activation row isums[b * 8 + c] as above, from the unpacked codes.
// Block b's codes start at codes + b * stride bytes, its code sums at wsums + b * stride / 4 ints
// (both in one record per block in packed weights; in separate arrays for per-call unpacking).
using QuantTileDots = void (*)(int32_t* isums, const int8_t* codes, const int32_t* wsums, size_t stride,
                               const int8_t* xq, const int32_t* xsums, size_t nblocks);
QuantTileDots quantTileDotsFor(QuantType type, QuantPath path);

// Packed weights (layout and kernels in quant_packed.h): the blocks re-laid once at load so that
// every call, one row or many, streams them once. Bytes of one 16-row tile / of a whole weight.
size_t packedTileBytes(QuantType type, size_t k);
size_t packedWeightBytes(QuantType type, size_t n, size_t k);
void packQuantWeight(QuantType type, const uint8_t* w, size_t n, size_t k, uint8_t* packed);
void unpackQuantWeight(QuantType type, const uint8_t* packed, size_t n, size_t k, uint8_t* w);
void quantMatmulPacked(float* out, const float* x, size_t m, QuantType type, const uint8_t* packed, size_t n,
                       size_t k, QuantPath path);

}  // namespace seesaw
