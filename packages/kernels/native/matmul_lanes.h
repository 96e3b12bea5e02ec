// Vector-ISA policies for the canonical matrix product (matmul_canonical.h). Both give the same
// bits: an accumulator is 16 f32 lanes (one zmm register, or a pair of ymm registers holding lanes
// 0-7 and 8-15), and laneSums reduces it by ONE lane tree:
//   m_j = l_j + l_(j+8)  (j < 8), then ((m0 + m4) + (m2 + m6)) + ((m1 + m5) + (m3 + m7)).
// Lanes512 lives in matmul_lanes512.h, compiled only under the AVX-512 target. Internal linkage
// only (see matmul_canonical.h).
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "simd.h"

namespace seesaw {
namespace {

// A weight dtype's storage type and exact scalar conversion to f32.
template <DType D>
struct Elem;
template <>
struct Elem<DType::F32> {
  using T = float;
  static float scalar(const float* p) { return *p; }
};
template <>
struct Elem<DType::BF16> {
  using T = uint16_t;
  static float scalar(const uint16_t* p) {
    const uint32_t bits = static_cast<uint32_t>(*p) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
};
template <>
struct Elem<DType::F16> {
  using T = uint16_t;
  static float scalar(const uint16_t* p) { return _cvtsh_ss(*p); }
};

// AVX2: lanes 0-7 in lo, 8-15 in hi. Tiles are small: each accumulator takes two registers.
struct Lanes256 {
  struct Acc {
    __m256 lo, hi;
  };
  static constexpr int kGemvCols = 6, kPairCols = 3, kRows = 2, kCols = 3;

  static Acc zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
  static Acc loadX(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
  template <DType D>
  static Acc loadW(const typename Elem<D>::T* p) {
    if constexpr (D == DType::F32) {
      return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)};
    } else if constexpr (D == DType::BF16) {
      const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      const __m256i lo = _mm256_cvtepu16_epi32(_mm256_castsi256_si128(bits));
      const __m256i hi = _mm256_cvtepu16_epi32(_mm256_extracti128_si256(bits, 1));
      return {_mm256_castsi256_ps(_mm256_slli_epi32(lo, 16)), _mm256_castsi256_ps(_mm256_slli_epi32(hi, 16))};
    } else {
      const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      return {_mm256_cvtph_ps(_mm256_castsi256_si128(bits)), _mm256_cvtph_ps(_mm256_extracti128_si256(bits, 1))};
    }
  }
  static Acc fma(const Acc& x, const Acc& w, const Acc& c) {
    return {_mm256_fmadd_ps(x.lo, w.lo, c.lo), _mm256_fmadd_ps(x.hi, w.hi, c.hi)};
  }

  // sums[i] = lane tree of acc[i], i < count <= 16: m = lo + hi, then eight m vectors at a time
  // through transposing adds that do exactly ((m0 + m4) + (m2 + m6)) + ((m1 + m5) + (m3 + m7)).
  static void laneSums(const Acc* acc, int count, float* sums) {
    for (int g = 0; g < count; g += 8) {
      __m256 v[8];
      for (int i = 0; i < 8; i++)
        v[i] = g + i < count ? _mm256_add_ps(acc[g + i].lo, acc[g + i].hi) : _mm256_setzero_ps();
      const __m256 s04 = _mm256_add_ps(_mm256_permute2f128_ps(v[0], v[4], 0x20), _mm256_permute2f128_ps(v[0], v[4], 0x31));
      const __m256 s15 = _mm256_add_ps(_mm256_permute2f128_ps(v[1], v[5], 0x20), _mm256_permute2f128_ps(v[1], v[5], 0x31));
      const __m256 s26 = _mm256_add_ps(_mm256_permute2f128_ps(v[2], v[6], 0x20), _mm256_permute2f128_ps(v[2], v[6], 0x31));
      const __m256 s37 = _mm256_add_ps(_mm256_permute2f128_ps(v[3], v[7], 0x20), _mm256_permute2f128_ps(v[3], v[7], 0x31));
      const __m256 r0145 = _mm256_add_ps(_mm256_shuffle_ps(s04, s15, 0x44), _mm256_shuffle_ps(s04, s15, 0xee));
      const __m256 r2367 = _mm256_add_ps(_mm256_shuffle_ps(s26, s37, 0x44), _mm256_shuffle_ps(s26, s37, 0xee));
      alignas(32) float out[8];
      _mm256_store_ps(out, _mm256_add_ps(_mm256_shuffle_ps(r0145, r2367, 0x88), _mm256_shuffle_ps(r0145, r2367, 0xdd)));
      for (int i = 0; i < 8 && g + i < count; i++) sums[g + i] = out[i];
    }
  }
};


}  // namespace
}  // namespace seesaw
