// Matrix product against a weight stored [N][K] (the nn.Linear layout), in the dot-product
// form: a tile of RX activation rows x NW weight rows keeps RX*NW vector accumulators whose
// lanes run along K; each step loads NW weight vectors (converted to f32 in registers) and RX
// activation vectors for RX*NW FMAs, so weights are never repacked or widened in memory.
//
// Weights are split over the pool by output features N, in blocks handed out dynamically.
// Within a block, by number of activation rows m:
//  - m <= 8 (decode): narrow tiles stream 6-8 weight rows at once front to back (enough
//    concurrent streams to fill a core's memory pipeline); for m > 3 rows go in pairs, the
//    first pair reads a weight group from memory, the others from L1/L2 (the second pair also
//    prefetches the next group into L2, +8-15% at m = 4..8).
//  - activations up to 320 KiB: 4x3 tiles; each weight row triple is streamed once from
//    memory and every row group consumes it while it is cached (next rows prefetched).
//  - more rows: K in blocks of ~2048; per block the N block's weights stay in L2 while
//    every 4-row group passes over them.
//  - m >= 48: the packed outer-product kernel (matmul_packed.cc), 20-25% faster there; below
//    that its per-call packing costs more than it gains (measured: equal at m = 32).
// Measured choices (2-core AVX2 VM): larger K blocks beat L1-sized ones (fewer horizontal
// sums); 8 weight streams per core beat 3 for one row by 40-50%.
#include "matmul.h"

#include <algorithm>

#include "matmul_packed.h"
#include "thread_pool.h"

namespace seesaw {
namespace {

constexpr int kMaxRows = 4;      // RX: activation rows per tile
constexpr int kMaxWeights = 3;   // NW: weight rows (output features) per tile
constexpr size_t kBlockN = 48;    // output features per scheduled task (a multiple of 3, 6 and 8)
constexpr size_t kBlockK = 2048;  // target K block of the K-blocked order
constexpr size_t kStreamActivationBytes = 320 * 1024;
constexpr size_t kMaxNarrowRows = 8;   // up to here: narrow tiles (1-3 rows, or pairs)
constexpr size_t kMinPackedRows = 48;  // from here: packed outer-product path (matmul_packed.cc)

// out[r*ldo + j] (+)= sum_{k in [k0,k1)} x[r*ldx + k] * w[j*ldw + k] for r < RX, j < NW.
// When first is true the tile is written (plus bias), otherwise added to what is there.
template <DType D, int RX, int NW, bool Prefetch>
__attribute__((always_inline)) inline void dotTile(const float* x, size_t ldx,
                                                   const typename WeightTraits<D>::T* w, size_t ldw,
                                                   size_t k0, size_t k1, float* out, size_t ldo,
                                                   const float* bias, bool first) {
  using Tr = WeightTraits<D>;
  // Only meaningful with Prefetch: the weight rows after this tile's, in the same layout.
  const char* prefetch = reinterpret_cast<const char*>(w + NW * ldw);
  const __m256 zero = _mm256_setzero_ps();
  __m256 c00 = zero, c01 = zero, c02 = zero;
  __m256 c10 = zero, c11 = zero, c12 = zero;
  __m256 c20 = zero, c21 = zero, c22 = zero;
  __m256 c30 = zero, c31 = zero, c32 = zero;
  const float* x0 = x;
  const float* x1 = x + ldx;
  const float* x2 = x + 2 * ldx;
  const float* x3 = x + 3 * ldx;
  const auto* w0 = w;
  const auto* w1 = w + ldw;
  const auto* w2 = w + 2 * ldw;
  const size_t kv = k0 + ((k1 - k0) & ~size_t(7));
  for (size_t k = k0; k < kv; k += 8) {
    if constexpr (Prefetch) {
      // This pass is compute-bound on weights already cached; pull the next weight rows
      // (contiguous after these) towards the cache meanwhile, NW*8 weights' worth per step.
      _mm_prefetch(prefetch, _MM_HINT_T0);
      if constexpr (NW * 8 * sizeof(typename Tr::T) > 64) _mm_prefetch(prefetch + 64, _MM_HINT_T0);
      prefetch += NW * 8 * sizeof(typename Tr::T);
    }
    __m256 b0 = Tr::load(w0 + k);
    __m256 b1 = NW > 1 ? Tr::load(w1 + k) : zero;
    __m256 b2 = NW > 2 ? Tr::load(w2 + k) : zero;
    __m256 a = _mm256_loadu_ps(x0 + k);
    c00 = _mm256_fmadd_ps(a, b0, c00);
    if constexpr (NW > 1) c01 = _mm256_fmadd_ps(a, b1, c01);
    if constexpr (NW > 2) c02 = _mm256_fmadd_ps(a, b2, c02);
    if constexpr (RX > 1) {
      a = _mm256_loadu_ps(x1 + k);
      c10 = _mm256_fmadd_ps(a, b0, c10);
      if constexpr (NW > 1) c11 = _mm256_fmadd_ps(a, b1, c11);
      if constexpr (NW > 2) c12 = _mm256_fmadd_ps(a, b2, c12);
    }
    if constexpr (RX > 2) {
      a = _mm256_loadu_ps(x2 + k);
      c20 = _mm256_fmadd_ps(a, b0, c20);
      if constexpr (NW > 1) c21 = _mm256_fmadd_ps(a, b1, c21);
      if constexpr (NW > 2) c22 = _mm256_fmadd_ps(a, b2, c22);
    }
    if constexpr (RX > 3) {
      a = _mm256_loadu_ps(x3 + k);
      c30 = _mm256_fmadd_ps(a, b0, c30);
      if constexpr (NW > 1) c31 = _mm256_fmadd_ps(a, b1, c31);
      if constexpr (NW > 2) c32 = _mm256_fmadd_ps(a, b2, c32);
    }
  }
  const __m256 acc[kMaxRows][kMaxWeights] = {{c00, c01, c02}, {c10, c11, c12}, {c20, c21, c22}, {c30, c31, c32}};
  const float* xs[kMaxRows] = {x0, x1, x2, x3};
  const typename Tr::T* ws[kMaxWeights] = {w0, w1, w2};
  for (int r = 0; r < RX; r++) {
    for (int j = 0; j < NW; j++) {
      float s = hsum(acc[r][j]);
      for (size_t k = kv; k < k1; k++) s += xs[r][k] * Tr::scalar(ws[j] + k);
      float* o = out + r * ldo + j;
      if (first) {
        *o = bias ? s + bias[j] : s;
      } else {
        *o += s;
      }
    }
  }
}

// Tile for 1-3 activation rows, which are bound by weight bandwidth: more weight rows (NW up
// to 8) stream concurrently than the 4x3 tile allows, which is what keeps a core's memory
// pipeline full. Accumulator arrays are fully unrolled into registers (checked in -S output).
template <DType D, int RX, int NW, bool PrefetchNext = false>
__attribute__((always_inline)) inline void narrowTile(const float* x, size_t ldx, const typename WeightTraits<D>::T* w,
                                                      size_t ldw, size_t k, float* out, size_t ldo, const float* bias) {
  using Tr = WeightTraits<D>;
  // With PrefetchNext (a pass over weights already cached), the next NW weight rows, which
  // follow these contiguously when ldw == k, are pulled into L2 at the pace of this pass.
  constexpr size_t prefetchStep = NW * 8 * sizeof(typename Tr::T);
  const char* prefetch = reinterpret_cast<const char*>(w + NW * ldw);
  __m256 c[RX][NW];
#pragma GCC unroll 8
  for (int r = 0; r < RX; r++)
#pragma GCC unroll 8
    for (int j = 0; j < NW; j++) c[r][j] = _mm256_setzero_ps();
  const size_t kv = k & ~size_t(7);
  for (size_t i = 0; i < kv; i += 8) {
    if constexpr (PrefetchNext) {
#pragma GCC unroll 4
      for (size_t off = 0; off < prefetchStep; off += 64) _mm_prefetch(prefetch + off, _MM_HINT_T1);
      prefetch += prefetchStep;
    }
#pragma GCC unroll 8
    for (int j = 0; j < NW; j++) {
      const __m256 b = Tr::load(w + j * ldw + i);
#pragma GCC unroll 8
      for (int r = 0; r < RX; r++) c[r][j] = _mm256_fmadd_ps(_mm256_loadu_ps(x + r * ldx + i), b, c[r][j]);
    }
  }
  for (int r = 0; r < RX; r++) {
    for (int j = 0; j < NW; j++) {
      float s = hsum(c[r][j]);
      for (size_t i = kv; i < k; i++) s += x[r * ldx + i] * Tr::scalar(w + j * ldw + i);
      out[r * ldo + j] = bias ? s + bias[j] : s;
    }
  }
}

// Output features [n0, n1) for 1-3 rows over the full K, in groups of NW weight rows.
template <DType D, int RX, int NW>
void narrowRows(const float* x, const typename WeightTraits<D>::T* w, size_t n, size_t k, size_t n0, size_t n1,
                float* out, const float* bias) {
  size_t j = n0;
  for (; j + NW <= n1; j += NW) narrowTile<D, RX, NW>(x, k, w + j * k, k, k, out + j, n, bias ? bias + j : nullptr);
  for (; j < n1; j++) narrowTile<D, RX, 1>(x, k, w + j * k, k, k, out + j, n, bias ? bias + j : nullptr);
}

// Same for m rows in pairs: each group of 6 weight rows is read from memory by the first pair
// and from cache by the others.
template <DType D>
void narrowPairs(const float* x, size_t m, const typename WeightTraits<D>::T* w, size_t n, size_t k, size_t n0,
                 size_t n1, float* out, const float* bias) {
  constexpr int NW = 6;
  size_t j = n0;
  for (; j + NW <= n1; j += NW) {
    const float* b = bias ? bias + j : nullptr;
    size_t r = 0;
    for (; r + 2 <= m; r += 2) {
      if (r == 2) {
        narrowTile<D, 2, NW, true>(x + r * k, k, w + j * k, k, k, out + r * n + j, n, b);
      } else {
        narrowTile<D, 2, NW>(x + r * k, k, w + j * k, k, k, out + r * n + j, n, b);
      }
    }
    if (r < m) narrowTile<D, 1, NW>(x + r * k, k, w + j * k, k, k, out + r * n + j, n, b);
  }
  for (; j < n1; j++)
    for (size_t r = 0; r < m; r++)
      narrowTile<D, 1, 1>(x + r * k, k, w + j * k, k, k, out + r * n + j, n, bias ? bias + j : nullptr);
}

template <DType D, int RX, bool PF>
inline void dotTileRows(int nw, const float* x, size_t ldx, const typename WeightTraits<D>::T* w, size_t ldw,
                        size_t k0, size_t k1, float* out, size_t ldo, const float* bias, bool first) {
  switch (nw) {
    case 3: dotTile<D, RX, 3, PF>(x, ldx, w, ldw, k0, k1, out, ldo, bias, first); break;
    case 2: dotTile<D, RX, 2, PF>(x, ldx, w, ldw, k0, k1, out, ldo, bias, first); break;
    default: dotTile<D, RX, 1, PF>(x, ldx, w, ldw, k0, k1, out, ldo, bias, first); break;
  }
}

template <DType D, bool PF>
inline void tile(int rx, int nw, const float* x, size_t ldx, const typename WeightTraits<D>::T* w, size_t ldw,
                 size_t k0, size_t k1, float* out, size_t ldo, const float* bias, bool first) {
  switch (rx) {
    case 4: dotTileRows<D, 4, PF>(nw, x, ldx, w, ldw, k0, k1, out, ldo, bias, first); break;
    case 3: dotTileRows<D, 3, PF>(nw, x, ldx, w, ldw, k0, k1, out, ldo, bias, first); break;
    case 2: dotTileRows<D, 2, PF>(nw, x, ldx, w, ldw, k0, k1, out, ldo, bias, first); break;
    default: dotTileRows<D, 1, PF>(nw, x, ldx, w, ldw, k0, k1, out, ldo, bias, first); break;
  }
}

template <DType D>
void matmulTyped(float* out, const float* x, size_t m, const typename WeightTraits<D>::T* w, size_t n, size_t k,
                 const float* bias) {
  if (m <= kMaxNarrowRows) {
    const size_t tasks = (n + kBlockN - 1) / kBlockN;
    parallelFor(tasks, [&](size_t task, int) {
      const size_t n0 = task * kBlockN, n1 = std::min(n, n0 + kBlockN);
      if (m == 1) narrowRows<D, 1, 8>(x, w, n, k, n0, n1, out, bias);
      if (m == 2) narrowRows<D, 2, 6>(x, w, n, k, n0, n1, out, bias);
      if (m == 3) narrowRows<D, 3, 6>(x, w, n, k, n0, n1, out, bias);
      if (m > 3) narrowPairs<D>(x, m, w, n, k, n0, n1, out, bias);
    });
    return;
  }
  const bool streaming = m * k * sizeof(float) <= kStreamActivationBytes;
  // Equal K blocks of about kBlockK, a multiple of 8 so only the last one has a scalar tail.
  size_t kb = k;
  if (!streaming) {
    size_t numBlocks = std::max<size_t>(1, (k + kBlockK / 2) / kBlockK);
    kb = ((k + numBlocks - 1) / numBlocks + 7) & ~size_t(7);
  }
  const size_t tasks = (n + kBlockN - 1) / kBlockN;
  parallelFor(tasks, [&](size_t task, int) {
    const size_t n0 = task * kBlockN;
    const size_t n1 = std::min(n, n0 + kBlockN);
    const float* taskBias = bias ? bias + n0 : nullptr;
    for (size_t k0 = 0; k0 < k; k0 += kb) {
      const size_t k1 = std::min(k, k0 + kb);
      const bool first = k0 == 0;
      if (streaming) {
        for (size_t j = n0; j < n1; j += kMaxWeights) {
          int nw = static_cast<int>(std::min<size_t>(kMaxWeights, n1 - j));
          const float* b = bias ? bias + j : nullptr;
          for (size_t r = 0; r < m; r += kMaxRows) {
            int rx = static_cast<int>(std::min<size_t>(kMaxRows, m - r));
            tile<D, true>(rx, nw, x + r * k, k, w + j * k, k, k0, k1, out + r * n + j, n, b, first);
          }
        }
      } else {
        for (size_t r = 0; r < m; r += kMaxRows) {
          int rx = static_cast<int>(std::min<size_t>(kMaxRows, m - r));
          for (size_t j = n0; j < n1; j += kMaxWeights) {
            int nw = static_cast<int>(std::min<size_t>(kMaxWeights, n1 - j));
            const float* b = taskBias ? taskBias + (j - n0) : nullptr;
            tile<D, false>(rx, nw, x + r * k, k, w + j * k, k, k0, k1, out + r * n + j, n, b, first);
          }
        }
      }
    }
  });
}

}  // namespace

void matmul(float* out, const float* x, size_t m, const void* w, DType dtype, size_t n, size_t k,
            const float* bias) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (size_t r = 0; r < m; r++)
      for (size_t j = 0; j < n; j++) out[r * n + j] = bias ? bias[j] : 0.0f;
    return;
  }
  if (m >= kMinPackedRows) {
    matmulPacked(out, x, m, w, dtype, n, k, bias);
    return;
  }
  switch (dtype) {
    case DType::F32: matmulTyped<DType::F32>(out, x, m, static_cast<const float*>(w), n, k, bias); break;
    case DType::F16: matmulTyped<DType::F16>(out, x, m, static_cast<const uint16_t*>(w), n, k, bias); break;
    case DType::BF16: matmulTyped<DType::BF16>(out, x, m, static_cast<const uint16_t*>(w), n, k, bias); break;
  }
}

}  // namespace seesaw
