// Row-wise element kernels. Each splits its rows over the pool only when the op is big enough
// that a wake-up (a few microseconds) is small against the work.
#include "rowwise.h"
#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "thread_pool.h"

namespace seesaw {
namespace {

constexpr size_t kParallelElements = 1 << 15;

// Calls body(begin, end) over [0, count) in chunks, on the pool when total work is large.
template <class F>
void forRows(size_t count, size_t elementsPerRow, F&& body) {
  if (count * elementsPerRow < kParallelElements || count < 2 || currentThreadCount() == 1) {
    body(size_t(0), count);
    return;
  }
  size_t chunks = std::min(count, static_cast<size_t>(currentThreadCount()) * 4);
  size_t per = (count + chunks - 1) / chunks;
  parallelFor(chunks, [&](size_t c, int) {
    size_t b = c * per;
    size_t e = std::min(count, b + per);
    if (b < e) body(b, e);
  });
}

}  // namespace

void rmsNorm(float* out, const float* x, const float* weight, size_t rows, size_t cols, float eps) {
  forRows(rows, cols, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; r++) {
      const float* xr = x + r * cols;
      float* orow = out + r * cols;
      __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
      size_t i = 0;
      for (; i + 16 <= cols; i += 16) {
        __m256 a = _mm256_loadu_ps(xr + i), b = _mm256_loadu_ps(xr + i + 8);
        s0 = _mm256_fmadd_ps(a, a, s0);
        s1 = _mm256_fmadd_ps(b, b, s1);
      }
      float ss = hsum(_mm256_add_ps(s0, s1));
      for (; i < cols; i++) ss += xr[i] * xr[i];
      // Mean and rsqrt in double: cheap per row and keeps the scale exact to f32 rounding.
      const float inv = static_cast<float>(1.0 / std::sqrt(static_cast<double>(ss) / cols + eps));
      const __m256 vinv = _mm256_set1_ps(inv);
      i = 0;
      for (; i + 8 <= cols; i += 8)
        _mm256_storeu_ps(orow + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + i), vinv),
                                                 _mm256_loadu_ps(weight + i)));
      for (; i < cols; i++) orow[i] = xr[i] * inv * weight[i];
    }
  });
}

void addInPlace(float* x, const float* y, size_t n) {
  constexpr size_t kChunk = 4096;
  forRows((n + kChunk - 1) / kChunk, kChunk, [&](size_t c0, size_t c1) {
    size_t b = c0 * kChunk, e = std::min(n, c1 * kChunk);
    size_t i = b;
    for (; i + 8 <= e; i += 8)
      _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < e; i++) x[i] += y[i];
  });
}

void rope(float* x, size_t numTokens, size_t numHeads, size_t headDim, size_t rowStride, const float* cos,
          const float* sin) {
  const size_t half = headDim / 2;
  forRows(numTokens, numHeads * headDim, [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; t++) {
      const float* c = cos + t * half;
      const float* s = sin + t * half;
      for (size_t h = 0; h < numHeads; h++) {
        float* lo = x + t * rowStride + h * headDim;
        float* hi = lo + half;
        size_t i = 0;
        for (; i + 8 <= half; i += 8) {
          __m256 a = _mm256_loadu_ps(lo + i), b = _mm256_loadu_ps(hi + i);
          __m256 cv = _mm256_loadu_ps(c + i), sv = _mm256_loadu_ps(s + i);
          _mm256_storeu_ps(lo + i, _mm256_fmsub_ps(a, cv, _mm256_mul_ps(b, sv)));
          _mm256_storeu_ps(hi + i, _mm256_fmadd_ps(b, cv, _mm256_mul_ps(a, sv)));
        }
        for (; i < half; i++) {
          float a = lo[i], b = hi[i];
          lo[i] = a * c[i] - b * s[i];
          hi[i] = b * c[i] + a * s[i];
        }
      }
    }
  });
}

void siluMul(float* out, const float* gateUp, size_t rows, size_t intermediate) {
  const size_t inter = intermediate;
  forRows(rows, inter, [&](size_t r0, size_t r1) {
    const __m256 one = _mm256_set1_ps(1.0f);
    for (size_t r = r0; r < r1; r++) {
      const float* g = gateUp + r * 2 * inter;
      const float* u = g + inter;
      float* o = out + r * inter;
      size_t i = 0;
      for (; i + 8 <= inter; i += 8) {
        __m256 gv = _mm256_loadu_ps(g + i);
        // silu(g) = g / (1 + exp(-g)); exp8 saturates to inf for very negative g, giving -0.
        __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), gv));
        __m256 silu = _mm256_div_ps(gv, _mm256_add_ps(one, e));
        _mm256_storeu_ps(o + i, _mm256_mul_ps(silu, _mm256_loadu_ps(u + i)));
      }
      for (; i < inter; i++) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
    }
  });
}

void embed(float* out, const void* table, DType dtype, size_t hidden, const int32_t* ids, size_t numIds) {
  forRows(numIds, hidden, [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; t++) {
      const size_t row = static_cast<size_t>(ids[t]) * hidden;
      float* o = out + t * hidden;
      if (dtype == DType::F32) {
        std::memcpy(o, static_cast<const float*>(table) + row, hidden * sizeof(float));
        continue;
      }
      const uint16_t* src = static_cast<const uint16_t*>(table) + row;
      size_t i = 0;
      if (dtype == DType::BF16) {
        for (; i + 8 <= hidden; i += 8) _mm256_storeu_ps(o + i, WeightTraits<DType::BF16>::load(src + i));
        for (; i < hidden; i++) o[i] = bf16ToF32(src[i]);
      } else {
        for (; i + 8 <= hidden; i += 8) _mm256_storeu_ps(o + i, WeightTraits<DType::F16>::load(src + i));
        for (; i < hidden; i++) o[i] = f16ToF32(src[i]);
      }
    }
  });
}

void writeKv(void* kCache, void* vCache, DType kvType, const float* k, const float* v, size_t rowStride,
             const int32_t* slots, size_t numTokens, size_t numKvHeads, size_t headDim, size_t blockSize) {
  // One head's headDim values to the cache's element type (16-bit: round to nearest even).
  auto store = [&](void* cache, size_t at, const float* src) {
    switch (kvType) {
      case DType::F32: std::memcpy(static_cast<float*>(cache) + at, src, headDim * sizeof(float)); break;
      case DType::BF16: f32ToBf16(src, static_cast<uint16_t*>(cache) + at, headDim); break;
      case DType::F16: f32ToF16(src, static_cast<uint16_t*>(cache) + at, headDim); break;
    }
  };
  for (size_t t = 0; t < numTokens; t++) {
    const size_t slot = static_cast<size_t>(slots[t]);
    const size_t block = slot / blockSize, offset = slot % blockSize;
    for (size_t h = 0; h < numKvHeads; h++) {
      const size_t dst = ((block * numKvHeads + h) * blockSize + offset) * headDim;
      store(kCache, dst, k + t * rowStride + h * headDim);
      store(vCache, dst, v + t * rowStride + h * headDim);
    }
  }
}

}  // namespace seesaw
