// Shared AVX2 helpers: loading 8 weights of any storage dtype as f32 lanes (conversion in
// registers), horizontal sums and a vectorised exp.
#pragma once
#include <immintrin.h>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace seesaw {

enum class DType : int { F32 = 0, F16 = 1, BF16 = 2 };

// Eight consecutive weights starting at p, converted to f32 lanes.
static inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
static inline __m256 load8(const uint16_t* p, std::integral_constant<DType, DType::BF16>) {
  // bf16 is the top half of an f32: zero-extend to 32 bits, then shift into place.
  __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}
static inline __m256 load8(const uint16_t* p, std::integral_constant<DType, DType::F16>) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

static inline float bf16ToF32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
static inline float f16ToF32(uint16_t h) { return _cvtsh_ss(h); }

// Weight element type and its scalar/vector loaders selected by dtype at compile time.
template <DType D>
struct WeightTraits;
template <>
struct WeightTraits<DType::F32> {
  using T = float;
  static inline __m256 load(const float* p) { return _mm256_loadu_ps(p); }
  static inline float scalar(const float* p) { return *p; }
};
template <>
struct WeightTraits<DType::BF16> {
  using T = uint16_t;
  static inline __m256 load(const uint16_t* p) {
    return load8(p, std::integral_constant<DType, DType::BF16>());
  }
  static inline float scalar(const uint16_t* p) { return bf16ToF32(*p); }
};
template <>
struct WeightTraits<DType::F16> {
  using T = uint16_t;
  static inline __m256 load(const uint16_t* p) {
    return load8(p, std::integral_constant<DType, DType::F16>());
  }
  static inline float scalar(const uint16_t* p) { return f16ToF32(*p); }
};

static inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

static inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// exp(x) for f32 lanes: range reduction x = n*ln2 + r, |r| <= ln2/2, degree-6 polynomial for
// e^r, then scale by 2^n through the exponent bits. Relative error about 2e-7 over the normal
// range; inputs below -87.3 flush to 0 and above 88.7 saturate to +inf.
static inline __m256 exp8(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.7f);
  const __m256 lo = _mm256_set1_ps(-87.3f);
  __m256 tooSmall = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // Two-part ln2 keeps r exact enough (Cody-Waite).
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  __m256 r2 = _mm256_mul_ps(r, r);
  p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // 2^n: n in [-126, 128]; split so the exponent field never overflows.
  __m256i ni = _mm256_cvtps_epi32(n);
  __m256i half = _mm256_srai_epi32(ni, 1);
  __m256i rest = _mm256_sub_epi32(ni, half);
  __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, _mm256_set1_epi32(127)), 23));
  __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(rest, _mm256_set1_epi32(127)), 23));
  __m256 result = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  return _mm256_andnot_ps(tooSmall, result);
}

}  // namespace seesaw
