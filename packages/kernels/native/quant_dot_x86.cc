// Per-block integer dot products for Q8_0 / Q4_0 weights against int8 activations, one
// function per instruction set, each compiled for its own target (function attributes), so the
// addon loads on any AVX2 machine and quant_matmul.cc picks by CPUID at run time.
// Unsigned x signed byte products (pmaddubsw / vpdpbusd) take |w| and x carrying w's sign for
// Q8_0; Q4_0 multiplies the unsigned nibble and subtracts 8 * sum(x). Every path yields the
// same exact int32 per block.
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

__attribute__((target("avx2"))) inline int32_t hsum256(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// 16 bytes of packed nibbles -> 32 unsigned bytes: low nibbles are elements 0..15, high 16..31.
__attribute__((target("avx2"))) inline __m256i unpackNibbles(const uint8_t* p) {
  __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  __m128i mask = _mm_set1_epi8(0x0f);
  __m128i lo = _mm_and_si128(b, mask);
  __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
  return _mm256_set_m128i(hi, lo);
}

__attribute__((target("avx2"))) void q8DotsAvx2(int32_t* isums, const uint8_t* wrow, const int8_t* xq,
                                                const int32_t*, size_t nblocks) {
  const __m256i ones = _mm256_set1_epi16(1);
  for (size_t b = 0; b < nblocks; b++) {
    __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wrow + b * kQ8Bytes + 2));
    __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * kQuantBlock));
    // |w| * (x with w's sign): pairs of products <= 2 * 127 * 127 fit int16.
    __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    isums[b] = hsum256(_mm256_madd_epi16(p16, ones));
  }
}

__attribute__((target("avx2"))) void q4DotsAvx2(int32_t* isums, const uint8_t* wrow, const int8_t* xq,
                                                const int32_t* xsums, size_t nblocks) {
  const __m256i ones = _mm256_set1_epi16(1);
  for (size_t b = 0; b < nblocks; b++) {
    __m256i w = unpackNibbles(wrow + b * kQ4Bytes + 2);
    __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * kQuantBlock));
    __m256i p16 = _mm256_maddubs_epi16(w, x);  // nibble (<= 15) * x: pairs fit int16
    isums[b] = hsum256(_mm256_madd_epi16(p16, ones)) - 8 * xsums[b];
  }
}

__attribute__((target("avx2,avxvnni"))) void q8DotsAvxVnni(int32_t* isums, const uint8_t* wrow,
                                                           const int8_t* xq, const int32_t*, size_t nblocks) {
  for (size_t b = 0; b < nblocks; b++) {
    __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wrow + b * kQ8Bytes + 2));
    __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * kQuantBlock));
    __m256i acc = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    isums[b] = hsum256(acc);
  }
}

__attribute__((target("avx2,avxvnni"))) void q4DotsAvxVnni(int32_t* isums, const uint8_t* wrow,
                                                           const int8_t* xq, const int32_t* xsums, size_t nblocks) {
  for (size_t b = 0; b < nblocks; b++) {
    __m256i w = unpackNibbles(wrow + b * kQ4Bytes + 2);
    __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * kQuantBlock));
    isums[b] = hsum256(_mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), w, x)) - 8 * xsums[b];
  }
}

// AVX-512 VNNI: two blocks per 512-bit register, reduced per 256-bit half.
__attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni"))) inline void reducePair(int32_t* out,
                                                                                              __m512i acc) {
  out[0] = hsum256(_mm512_castsi512_si256(acc));
  out[1] = hsum256(_mm512_extracti64x4_epi64(acc, 1));
}

__attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni"))) void q8DotsAvx512Vnni(
    int32_t* isums, const uint8_t* wrow, const int8_t* xq, const int32_t*, size_t nblocks) {
  size_t b = 0;
  for (; b + 2 <= nblocks; b += 2) {
    __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wrow + b * kQ8Bytes + 2));
    __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wrow + (b + 1) * kQ8Bytes + 2));
    __m512i w = _mm512_inserti64x4(_mm512_zextsi256_si512(w0), w1, 1);
    __m512i x = _mm512_loadu_si512(xq + b * kQuantBlock);
    // |w| and x with w's sign (no 512-bit sign instruction): negate x where w < 0.
    __mmask64 neg = _mm512_movepi8_mask(w);
    __m512i absW = _mm512_abs_epi8(w);
    __m512i sx = _mm512_mask_sub_epi8(x, neg, _mm512_setzero_si512(), x);
    reducePair(isums + b, _mm512_dpbusd_epi32(_mm512_setzero_si512(), absW, sx));
  }
  if (b < nblocks) {  // odd last block: the 256-bit EVEX form (AVX-512 VL), not AVX-VNNI's VEX form
    __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wrow + b * kQ8Bytes + 2));
    __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * kQuantBlock));
    isums[b] = hsum256(_mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)));
  }
}

__attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni"))) void q4DotsAvx512Vnni(
    int32_t* isums, const uint8_t* wrow, const int8_t* xq, const int32_t* xsums, size_t nblocks) {
  size_t b = 0;
  for (; b + 2 <= nblocks; b += 2) {
    __m512i w = _mm512_inserti64x4(_mm512_zextsi256_si512(unpackNibbles(wrow + b * kQ4Bytes + 2)),
                                   unpackNibbles(wrow + (b + 1) * kQ4Bytes + 2), 1);
    __m512i x = _mm512_loadu_si512(xq + b * kQuantBlock);
    reducePair(isums + b, _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, x));
    isums[b] -= 8 * xsums[b];
    isums[b + 1] -= 8 * xsums[b + 1];
  }
  if (b < nblocks) {
    __m256i w = unpackNibbles(wrow + b * kQ4Bytes + 2);
    __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * kQuantBlock));
    isums[b] = hsum256(_mm256_dpbusd_epi32(_mm256_setzero_si256(), w, x)) - 8 * xsums[b];
  }
}

}  // namespace

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
