// The AVX-512 policy of the canonical matrix product (see matmul_lanes.h for the contract it
// shares with Lanes256); included only by matmul_avx512.cc, under its target pragma.
#pragma once
#include "matmul_lanes.h"

namespace seesaw {
namespace {

// AVX-512: one zmm per accumulator, so tiles are four times larger than Lanes256's.
struct Lanes512 {
  using Acc = __m512;
  static constexpr int kGemvCols = 8, kPairCols = 8, kRows = 4, kCols = 4;

  static Acc zero() { return _mm512_setzero_ps(); }
  static Acc loadX(const float* p) { return _mm512_loadu_ps(p); }
  template <DType D>
  static Acc loadW(const typename Elem<D>::T* p) {
    if constexpr (D == DType::F32) {
      return _mm512_loadu_ps(p);
    } else if constexpr (D == DType::BF16) {
      const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
      return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
    } else {
      return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    }
  }
  static Acc fma(Acc x, Acc w, Acc c) { return _mm512_fmadd_ps(x, w, c); }

  // sums[i] = lane tree of acc[i], i < count <= 16, sixteen at once by transposing adds:
  // 256-bit halves (l_j + l_j+8), then 128-bit halves (m_j + m_j+4), then pairs within 128 bits
  // twice. The result lane 4q + p holds vector 4p + q.
  static void laneSums(const Acc* acc, int count, float* sums) {
    __m512 v[16];
    for (int i = 0; i < 16; i++) v[i] = i < count ? acc[i] : _mm512_setzero_ps();
    __m512 s[8], t[4], u[2];
    for (int i = 0; i < 8; i++)
      s[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44),
                           _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xee));
    for (int i = 0; i < 4; i++)
      t[i] = _mm512_add_ps(_mm512_shuffle_f32x4(s[2 * i], s[2 * i + 1], 0x88),
                           _mm512_shuffle_f32x4(s[2 * i], s[2 * i + 1], 0xdd));
    for (int i = 0; i < 2; i++)
      u[i] = _mm512_add_ps(_mm512_shuffle_ps(t[2 * i], t[2 * i + 1], 0x44), _mm512_shuffle_ps(t[2 * i], t[2 * i + 1], 0xee));
    alignas(64) float out[16];
    _mm512_store_ps(out, _mm512_add_ps(_mm512_shuffle_ps(u[0], u[1], 0x88), _mm512_shuffle_ps(u[0], u[1], 0xdd)));
    for (int i = 0; i < count; i++) sums[i] = out[4 * (i % 4) + i / 4];
  }
};

}  // namespace
}  // namespace seesaw
