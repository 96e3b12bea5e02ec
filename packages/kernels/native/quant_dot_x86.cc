// Per-block integer dot products of 8 weight rows (Q8_0 / Q4_0) against one row of int8
// activations, one function per instruction set, each compiled for its own target (function
// attributes), so the addon loads on any AVX2 machine and quant_matmul.cc picks by CPUID at run
// time. Unsigned x signed byte products (pmaddubsw / vpdpbusd) take |w| and x carrying w's sign
// for Q8_0; Q4_0 multiplies the unsigned nibble and subtracts 8 * sum(x). Every path yields the
// same exact int32 per block, so the f32 results cannot differ between paths.
// GCC 12's AVX-512 headers build results from _mm512_undefined_* and warn about it.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "quant_matmul.h"

namespace seesaw {
namespace {

constexpr size_t kQ8Bytes = 34;
constexpr size_t kQ4Bytes = 18;

// Eight 8-lane int32 vectors -> one vector of their eight lane sums (integer: order is free).
__attribute__((target("avx2"))) inline __m256i sumLanes8(const __m256i* v) {
  __m256i t0 = _mm256_hadd_epi32(v[0], v[1]);
  __m256i t1 = _mm256_hadd_epi32(v[2], v[3]);
  __m256i t2 = _mm256_hadd_epi32(v[4], v[5]);
  __m256i t3 = _mm256_hadd_epi32(v[6], v[7]);
  __m256i u0 = _mm256_hadd_epi32(t0, t1);  // [s0..s3 of low halves | s0..s3 of high halves]
  __m256i u1 = _mm256_hadd_epi32(t2, t3);
  return _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20), _mm256_permute2x128_si256(u0, u1, 0x31));
}

// 16 bytes of packed nibbles -> 32 unsigned bytes: low nibbles are elements 0..15, high 16..31.
__attribute__((target("avx2"))) inline __m256i unpackNibbles(const uint8_t* p) {
  __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  __m128i mask = _mm_set1_epi8(0x0f);
  __m128i lo = _mm_and_si128(b, mask);
  __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
  return _mm256_set_m128i(hi, lo);
}

__attribute__((target("avx2"))) inline __m256i loadQ8(const uint8_t* row, size_t b) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b * kQ8Bytes + 2));
}

__attribute__((target("avx2"))) inline __m256i loadX(const int8_t* xq, size_t b) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * kQuantBlock));
}

__attribute__((target("avx2"))) inline void storeBlock(int32_t* isums, size_t b, __m256i v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(isums + b * kQuantTileRows), v);
}

__attribute__((target("avx2"))) void q8DotsAvx2(int32_t* isums, const uint8_t* const* wrows, const int8_t* xq,
                                                const int32_t*, size_t nblocks) {
  const __m256i ones = _mm256_set1_epi16(1);
  for (size_t b = 0; b < nblocks; b++) {
    __m256i x = loadX(xq, b);
    __m256i acc[kQuantTileRows];
    for (size_t c = 0; c < kQuantTileRows; c++) {
      __m256i w = loadQ8(wrows[c], b);
      // |w| * (x with w's sign): pairs of products <= 2 * 127 * 127 fit int16.
      acc[c] = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)), ones);
    }
    storeBlock(isums, b, sumLanes8(acc));
  }
}

__attribute__((target("avx2"))) void q4DotsAvx2(int32_t* isums, const uint8_t* const* wrows, const int8_t* xq,
                                                const int32_t* xsums, size_t nblocks) {
  const __m256i ones = _mm256_set1_epi16(1);
  for (size_t b = 0; b < nblocks; b++) {
    __m256i x = loadX(xq, b);
    __m256i acc[kQuantTileRows];
    for (size_t c = 0; c < kQuantTileRows; c++) {
      // nibble (<= 15) * x: pairs fit int16.
      acc[c] = _mm256_madd_epi16(_mm256_maddubs_epi16(unpackNibbles(wrows[c] + b * kQ4Bytes + 2), x), ones);
    }
    storeBlock(isums, b, _mm256_sub_epi32(sumLanes8(acc), _mm256_set1_epi32(8 * xsums[b])));
  }
}

__attribute__((target("avx2,avxvnni"))) void q8DotsAvxVnni(int32_t* isums, const uint8_t* const* wrows,
                                                           const int8_t* xq, const int32_t*, size_t nblocks) {
  for (size_t b = 0; b < nblocks; b++) {
    __m256i x = loadX(xq, b);
    __m256i acc[kQuantTileRows];
    for (size_t c = 0; c < kQuantTileRows; c++) {
      __m256i w = loadQ8(wrows[c], b);
      acc[c] = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    }
    storeBlock(isums, b, sumLanes8(acc));
  }
}

__attribute__((target("avx2,avxvnni"))) void q4DotsAvxVnni(int32_t* isums, const uint8_t* const* wrows,
                                                           const int8_t* xq, const int32_t* xsums, size_t nblocks) {
  for (size_t b = 0; b < nblocks; b++) {
    __m256i x = loadX(xq, b);
    __m256i acc[kQuantTileRows];
    for (size_t c = 0; c < kQuantTileRows; c++) {
      acc[c] = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), unpackNibbles(wrows[c] + b * kQ4Bytes + 2), x);
    }
    storeBlock(isums, b, _mm256_sub_epi32(sumLanes8(acc), _mm256_set1_epi32(8 * xsums[b])));
  }
}

#define SEESAW_AVX512_VNNI "avx2,avx512f,avx512bw,avx512vl,avx512vnni"

// AVX-512 VNNI (EVEX 256-bit forms; the 512-bit form would need two blocks per register, and
// blocks of a row are 34 / 18 bytes apart). Runs on AVX-512 VNNI CPUs without AVX-VNNI.
__attribute__((target(SEESAW_AVX512_VNNI))) void q8DotsAvx512Vnni(int32_t* isums, const uint8_t* const* wrows,
                                                                  const int8_t* xq, const int32_t*, size_t nblocks) {
  for (size_t b = 0; b < nblocks; b++) {
    __m256i x = loadX(xq, b);
    __m256i acc[kQuantTileRows];
    for (size_t c = 0; c < kQuantTileRows; c++) {
      __m256i w = loadQ8(wrows[c], b);
      // x with w's sign without a second sign op: negate x where w < 0 (mask from w's top bits).
      __m256i sx = _mm256_mask_sub_epi8(x, _mm256_movepi8_mask(w), _mm256_setzero_si256(), x);
      acc[c] = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(w), sx);
    }
    storeBlock(isums, b, sumLanes8(acc));
  }
}

__attribute__((target(SEESAW_AVX512_VNNI))) void q4DotsAvx512Vnni(int32_t* isums, const uint8_t* const* wrows,
                                                                  const int8_t* xq, const int32_t* xsums,
                                                                  size_t nblocks) {
  for (size_t b = 0; b < nblocks; b++) {
    __m256i x = loadX(xq, b);
    __m256i acc[kQuantTileRows];
    for (size_t c = 0; c < kQuantTileRows; c++) {
      acc[c] = _mm256_dpbusd_epi32(_mm256_setzero_si256(), unpackNibbles(wrows[c] + b * kQ4Bytes + 2), x);
    }
    storeBlock(isums, b, _mm256_sub_epi32(sumLanes8(acc), _mm256_set1_epi32(8 * xsums[b])));
  }
}

// ---- Unpacked tiles (many activation rows): codes[b][g][c][4], the block's 32 codes of the 8 rows
// in 8 groups of 4 consecutive k, so 32-bit lane c of one load holds row c's 4 codes of group g.
// With x's 4 bytes of that group broadcast to every lane, one byte-dot instruction adds group g
// of all 8 rows at once: 8 instructions a block and no horizontal sums.
// Q8_0 on VNNI: x + 128 is unsigned (x in [-127, 127]), so vpdpbusd gives
// sum((x + 128) * w) = sum(x * w) + 128 * sum(w), and the tile's code sums take the offset off.

__attribute__((target("avx2"))) inline __m256i loadGroup(const int8_t* codes, size_t stride, size_t b, size_t g) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + b * stride + g * kQuantTileRows * 4));
}

__attribute__((target("avx2"))) inline __m256i broadcastGroup(const int8_t* xq, size_t b, size_t g) {
  int32_t v;
  __builtin_memcpy(&v, xq + b * kQuantBlock + 4 * g, 4);
  return _mm256_set1_epi32(v);
}

// Packed weights stream from memory once per call: fetch the record kPrefetchBlocks ahead.
constexpr size_t kPrefetchBlocks = 6;
inline void prefetchBlock(const int8_t* codes, size_t stride, size_t b) {
  const char* p = reinterpret_cast<const char*>(codes + (b + kPrefetchBlocks) * stride);
  for (size_t line = 0; line < stride; line += 64) _mm_prefetch(p + line, _MM_HINT_T0);
}

__attribute__((target("avx2"))) void q8TileAvx2(int32_t* isums, const int8_t* codes, const int32_t*, size_t stride,
                                                const int8_t* xq, const int32_t*, size_t nblocks) {
  const __m256i ones = _mm256_set1_epi16(1);
  for (size_t b = 0; b < nblocks; b++) {
    __m256i acc = _mm256_setzero_si256();
    for (size_t g = 0; g < 8; g++) {
      __m256i w = loadGroup(codes, stride, b, g);
      __m256i x = broadcastGroup(xq, b, g);
      __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p16, ones));
    }
    storeBlock(isums, b, acc);
  }
}

__attribute__((target("avx2"))) void q4TileAvx2(int32_t* isums, const int8_t* codes, const int32_t*, size_t stride,
                                                const int8_t* xq, const int32_t* xsums, size_t nblocks) {
  const __m256i ones = _mm256_set1_epi16(1);
  for (size_t b = 0; b < nblocks; b++) {
    __m256i acc = _mm256_setzero_si256();
    for (size_t g = 0; g < 8; g++) {
      __m256i p16 = _mm256_maddubs_epi16(loadGroup(codes, stride, b, g), broadcastGroup(xq, b, g));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p16, ones));
    }
    storeBlock(isums, b, _mm256_sub_epi32(acc, _mm256_set1_epi32(8 * xsums[b])));
  }
}

template <bool kQ8>
__attribute__((target("avx2,avxvnni"))) void tileAvxVnni(int32_t* isums, const int8_t* codes, const int32_t* wsums, size_t stride,
                                                         const int8_t* xq, const int32_t* xsums, size_t nblocks) {
  const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
  for (size_t b = 0; b < nblocks; b++) {
    if (b + kPrefetchBlocks < nblocks) prefetchBlock(codes, stride, b);
    // Two accumulators (even / odd groups): the byte-dot latency chain is half as long.
    __m256i acc0 = _mm256_setzero_si256();
    __m256i acc1 = _mm256_setzero_si256();
    for (size_t g = 0; g < 8; g += 2) {
      __m256i x0 = broadcastGroup(xq, b, g);
      __m256i x1 = broadcastGroup(xq, b, g + 1);
      acc0 = kQ8 ? _mm256_dpbusd_avx_epi32(acc0, _mm256_xor_si256(x0, bias), loadGroup(codes, stride, b, g))
                 : _mm256_dpbusd_avx_epi32(acc0, loadGroup(codes, stride, b, g), x0);
      acc1 = kQ8 ? _mm256_dpbusd_avx_epi32(acc1, _mm256_xor_si256(x1, bias), loadGroup(codes, stride, b, g + 1))
                 : _mm256_dpbusd_avx_epi32(acc1, loadGroup(codes, stride, b, g + 1), x1);
    }
    __m256i acc = _mm256_add_epi32(acc0, acc1);
    __m256i offset = kQ8 ? _mm256_slli_epi32(
                               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wsums + b * (stride / 4))), 7)
                         : _mm256_set1_epi32(8 * xsums[b]);
    storeBlock(isums, b, _mm256_sub_epi32(acc, offset));
  }
}

template <bool kQ8>
__attribute__((target(SEESAW_AVX512_VNNI))) void tileAvx512Vnni(int32_t* isums, const int8_t* codes,
                                                                const int32_t* wsums, size_t stride, const int8_t* xq,
                                                                const int32_t* xsums, size_t nblocks) {
  const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
  for (size_t b = 0; b < nblocks; b++) {
    if (b + kPrefetchBlocks < nblocks) prefetchBlock(codes, stride, b);
    // Two accumulators (even / odd groups): the byte-dot latency chain is half as long.
    __m256i acc0 = _mm256_setzero_si256();
    __m256i acc1 = _mm256_setzero_si256();
    for (size_t g = 0; g < 8; g += 2) {
      __m256i x0 = broadcastGroup(xq, b, g);
      __m256i x1 = broadcastGroup(xq, b, g + 1);
      acc0 = kQ8 ? _mm256_dpbusd_epi32(acc0, _mm256_xor_si256(x0, bias), loadGroup(codes, stride, b, g))
                 : _mm256_dpbusd_epi32(acc0, loadGroup(codes, stride, b, g), x0);
      acc1 = kQ8 ? _mm256_dpbusd_epi32(acc1, _mm256_xor_si256(x1, bias), loadGroup(codes, stride, b, g + 1))
                 : _mm256_dpbusd_epi32(acc1, loadGroup(codes, stride, b, g + 1), x1);
    }
    __m256i acc = _mm256_add_epi32(acc0, acc1);
    __m256i offset = kQ8 ? _mm256_slli_epi32(
                               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wsums + b * (stride / 4))), 7)
                         : _mm256_set1_epi32(8 * xsums[b]);
    storeBlock(isums, b, _mm256_sub_epi32(acc, offset));
  }
}

}  // namespace

QuantTileDots x86QuantTileDots(QuantType type, QuantPath path) {
  bool q8 = type == QuantType::Q8_0;
  switch (path) {
    case QuantPath::Avx2:
      return q8 ? q8TileAvx2 : q4TileAvx2;
    case QuantPath::AvxVnni:
      return q8 ? tileAvxVnni<true> : tileAvxVnni<false>;
    case QuantPath::Avx512Vnni:
      return q8 ? tileAvx512Vnni<true> : tileAvx512Vnni<false>;
    default:
      return nullptr;
  }
}

QuantBlockDots x86QuantBlockDots(QuantType type, QuantPath path) {
  bool q8 = type == QuantType::Q8_0;
  switch (path) {
    case QuantPath::Avx2:
      return q8 ? q8DotsAvx2 : q4DotsAvx2;
    case QuantPath::AvxVnni:
      return q8 ? q8DotsAvxVnni : q4DotsAvxVnni;
    case QuantPath::Avx512Vnni:
      return q8 ? q8DotsAvx512Vnni : q4DotsAvx512Vnni;
    default:
      return nullptr;
  }
}

}  // namespace seesaw
