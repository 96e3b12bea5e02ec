// Activation quantization and the per-output reduction of the quantized matmuls: the two places
// where floating-point rounding happens, written once for every path (see quant_matmul.cc for the
// order they implement).
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "quant_internal.h"
#include "quant_matmul.h"

namespace seesaw {
namespace {

// The halving tree over block partials, 8 output columns per lane (each lane's order is the
// scalar tree's: lane-wise IEEE adds).
// Block i's 8 floats at p + i * stride. Sizes up to 4 are written out (the tree's shape for them:
// 3 = p0 + (p1 + p2), 4 = (p0 + p1) + (p2 + p3)) to keep calls off the leaves.
__m256 halvingTree(const float* p, size_t stride, size_t lo, size_t hi) {
  auto at = [p, stride](size_t i) { return _mm256_loadu_ps(p + i * stride); };
  switch (hi - lo) {
    case 1:
      return at(lo);
    case 2:
      return _mm256_add_ps(at(lo), at(lo + 1));
    case 3:
      return _mm256_add_ps(at(lo), _mm256_add_ps(at(lo + 1), at(lo + 2)));
    case 4:
      return _mm256_add_ps(_mm256_add_ps(at(lo), at(lo + 1)), _mm256_add_ps(at(lo + 2), at(lo + 3)));
    default: {
      size_t mid = lo + (hi - lo) / 2;
      return _mm256_add_ps(halvingTree(p, stride, lo, mid), halvingTree(p, stride, mid, hi));
    }
  }
}

}  // namespace

float halfToFloat(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return _cvtsh_ss(bits);
}

// One activation row to int8 blocks: scales, codes and per-block code sums (for Q4_0's offset).
// Per block d = amax / 127, q = roundf(x * (1 / d)) (ggml's Q8_0 rule), 8 lanes at a time: the
// products are the scalar ones, and roundf (half away from zero) is trunc(|v|) + (frac >= 0.5)
// with v's sign, exact for |v| <= 127.
void quantizeRow(const float* x, size_t k, int8_t* q, float* d, int32_t* sums) {
  const __m256 absMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 one = _mm256_set1_ps(1.0f);
  for (size_t b = 0; b < k / kQuantBlock; b++) {
    const float* xb = x + b * kQuantBlock;
    __m256 v[4];
    // max_ps returns its second operand when the first is NaN: NaNs are skipped, as fmax does.
    __m256 amax8 = _mm256_setzero_ps();
    for (size_t j = 0; j < 4; j++) {
      v[j] = _mm256_loadu_ps(xb + 8 * j);
      amax8 = _mm256_max_ps(_mm256_and_ps(v[j], absMask), amax8);
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, amax8);
    float amax = 0;
    for (float lane : lanes) amax = std::fmax(amax, lane);
    const float db = amax / 127.0f;
    const float id = db != 0 ? 1.0f / db : 0.0f;
    alignas(32) int32_t codes[kQuantBlock];
    __m256i sum8 = _mm256_setzero_si256();
    for (size_t j = 0; j < 4; j++) {
      const __m256 scaled = _mm256_mul_ps(v[j], _mm256_set1_ps(id));
      const __m256 mag = _mm256_and_ps(scaled, absMask);
      const __m256 whole = _mm256_round_ps(mag, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __m256 up = _mm256_and_ps(_mm256_cmp_ps(_mm256_sub_ps(mag, whole), half, _CMP_GE_OQ), one);
      const __m256 rounded = _mm256_or_ps(_mm256_add_ps(whole, up), _mm256_andnot_ps(absMask, scaled));
      const __m256i c = _mm256_cvttps_epi32(rounded);
      sum8 = _mm256_add_epi32(sum8, c);
      _mm256_store_si256(reinterpret_cast<__m256i*>(codes + 8 * j), c);
    }
    for (size_t i = 0; i < kQuantBlock; i++) q[b * kQuantBlock + i] = static_cast<int8_t>(codes[i]);
    alignas(32) int32_t sumLanes[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(sumLanes), sum8);
    int32_t sum = 0;
    for (int32_t lane : sumLanes) sum += lane;
    d[b] = db;
    sums[b] = sum;
  }
}

// One activation row's 8 outputs of a tile: p[b] = (d_w * d_x) * isum lane-wise, then the tree.
// dw: block b's 8 scales at dw + b * dwStride.
void combineRow(float* out, size_t count, const float* dw, size_t dwStride, const float* dx, const int32_t* isums,
                float* partial, size_t nb) {
  for (size_t b = 0; b < nb; b++) {
    __m256 scale = _mm256_mul_ps(_mm256_loadu_ps(dw + b * dwStride), _mm256_set1_ps(dx[b]));
    __m256i isum = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(isums + b * kQuantTileRows));
    _mm256_storeu_ps(partial + b * kQuantTileRows, _mm256_mul_ps(scale, _mm256_cvtepi32_ps(isum)));
  }
  alignas(32) float result[kQuantTileRows];
  _mm256_store_ps(result, halvingTree(partial, kQuantTileRows, 0, nb));
  for (size_t c = 0; c < count; c++) out[c] = result[c];
}

void halvingTree16(float* out, size_t count, const float* partial, size_t nb) {
  alignas(32) float result[16];
  _mm256_store_ps(result, halvingTree(partial, 16, 0, nb));
  _mm256_store_ps(result + 8, halvingTree(partial + 8, 16, 0, nb));
  for (size_t c = 0; c < count; c++) out[c] = result[c];
}

}  // namespace seesaw
