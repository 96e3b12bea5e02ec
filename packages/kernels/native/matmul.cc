// Matrix product against a weight stored [N][K] (the nn.Linear layout), in the dot-product
// form, computed in the ONE canonical order of docs/determinism.md for every output, whatever
// the number of rows, the tile an output lands in or the thread split:
//   - K is cut into chunks of kChunk = 32; a chunk partial is 8 lane accumulators (element i of
//     the chunk -> lane i mod 8, fused multiply-add in increasing i), summed by hsum's pattern,
//     then the chunk's scalar tail (last chunk only) added by fma in increasing order;
//   - chunk partials are combined by the halving tree tree(lo, hi) = tree(lo, mid) + tree(mid, hi),
//     mid = lo + (hi - lo) / 2; the bias is added last.
// A tile of RX activation rows x NW weight rows keeps RX*NW vector accumulators; each step loads
// NW weight vectors (converted to f32 in registers) and RX activation vectors, so weights are
// never repacked or widened in memory. The tree is walked recursively over chunk ranges, leaves
// in increasing K, so weights and activations still stream front to back; each level holds only
// the tile's RX*NW partials. Because every tile computes the same expression per output, a
// request's bits do not depend on its neighbours (tested in matmul-invariance.test.ts).
//
// Weights are split over the pool by output features N, in blocks handed out dynamically.
// Tiles by number of activation rows m: 1 row x 8 weight rows (decode: 8 concurrent weight
// streams fill a core's memory pipeline), 2-3 rows x 6, 4-8 rows in pairs x 6 (the first pair
// reads a weight group from memory, the others from cache), more rows 4 x 3 with every 4-row
// group passing over a weight triple while it is cached.
#include "matmul.h"

#include <algorithm>
#include <cmath>

#include "thread_pool.h"

namespace seesaw {
namespace {

constexpr size_t kChunk = 32;         // canonical K chunk for f32/f16/bf16 weights
constexpr size_t kBlockN = 48;        // output features per scheduled task (a multiple of 3, 6 and 8)
constexpr size_t kMaxNarrowRows = 8;  // up to here: narrow tiles (1-3 rows, or pairs)

template <int RX, int NW>
struct TileSums {
  float v[RX][NW];
};

// [hsum(v[0]), ..., hsum(v[7])] with exactly hsum's adds per vector
// ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)), done as transposing adds: 11 shuffles and
// 7 adds for eight sums instead of 8 x (3 shuffles + 3 adds).
__attribute__((always_inline)) inline __m256 hsum8(const __m256* v) {
  // s_i: [v_i lanes 0..3 + lanes 4..7] for i and i + 4 side by side.
  const __m256 s04 = _mm256_add_ps(_mm256_permute2f128_ps(v[0], v[4], 0x20), _mm256_permute2f128_ps(v[0], v[4], 0x31));
  const __m256 s15 = _mm256_add_ps(_mm256_permute2f128_ps(v[1], v[5], 0x20), _mm256_permute2f128_ps(v[1], v[5], 0x31));
  const __m256 s26 = _mm256_add_ps(_mm256_permute2f128_ps(v[2], v[6], 0x20), _mm256_permute2f128_ps(v[2], v[6], 0x31));
  const __m256 s37 = _mm256_add_ps(_mm256_permute2f128_ps(v[3], v[7], 0x20), _mm256_permute2f128_ps(v[3], v[7], 0x31));
  // (s0 + s2, s1 + s3) of each vector.
  const __m256 r0145 = _mm256_add_ps(_mm256_shuffle_ps(s04, s15, 0x44), _mm256_shuffle_ps(s04, s15, 0xee));
  const __m256 r2367 = _mm256_add_ps(_mm256_shuffle_ps(s26, s37, 0x44), _mm256_shuffle_ps(s26, s37, 0xee));
  // (s0 + s2) + (s1 + s3), lanes in vector order 0..7.
  return _mm256_add_ps(_mm256_shuffle_ps(r0145, r2367, 0x88), _mm256_shuffle_ps(r0145, r2367, 0xdd));
}

// Chunk partials of the tile over K elements [k0, k0 + len): the in-chunk canonical order.
template <DType D, int RX, int NW, size_t Len>
__attribute__((always_inline)) inline void chunkPartials(const float* x, size_t ldx,
                                                         const typename WeightTraits<D>::T* w, size_t ldw,
                                                         size_t k0, size_t len, TileSums<RX, NW>& p) {
  using Tr = WeightTraits<D>;
  __m256 c[RX][NW];
#pragma GCC unroll 8
  for (int r = 0; r < RX; r++)
#pragma GCC unroll 8
    for (int j = 0; j < NW; j++) c[r][j] = _mm256_setzero_ps();
  // Len is kChunk for a full chunk (loop fully unrolled), 0 for the short last chunk.
  const size_t n = Len ? Len : len;
  const size_t nv = n & ~size_t(7);
#pragma GCC unroll 4
  for (size_t i = 0; i < nv; i += 8) {
#pragma GCC unroll 8
    for (int j = 0; j < NW; j++) {
      const __m256 b = Tr::load(w + j * ldw + k0 + i);
#pragma GCC unroll 8
      for (int r = 0; r < RX; r++) c[r][j] = _mm256_fmadd_ps(_mm256_loadu_ps(x + r * ldx + k0 + i), b, c[r][j]);
    }
  }
  // hsum of every accumulator, eight at a time (same adds as hsum, see hsum8).
  constexpr int kAcc = RX * NW;
  constexpr int kGroups = (kAcc + 7) / 8;
  alignas(32) float sums[kGroups * 8];
  const __m256* flat = &c[0][0];
#pragma GCC unroll 4
  for (int g = 0; g < kGroups; g++) {
    __m256 v[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) v[i] = g * 8 + i < kAcc ? flat[g * 8 + i] : _mm256_setzero_ps();
    _mm256_store_ps(sums + g * 8, hsum8(v));
  }
  for (int r = 0; r < RX; r++) {
    for (int j = 0; j < NW; j++) {
      float s = sums[r * NW + j];
      for (size_t i = nv; i < n; i++) s = std::fma(x[r * ldx + k0 + i], Tr::scalar(w + j * ldw + k0 + i), s);
      p.v[r][j] = s;
    }
  }
}

// p = tree(lo, hi) over the chunks of a K-long row: the halving tree of docs/determinism.md.
template <DType D, int RX, int NW>
void treeSums(const float* x, size_t ldx, const typename WeightTraits<D>::T* w, size_t ldw, size_t k, size_t lo,
              size_t hi, TileSums<RX, NW>& p) {
  if (hi - lo == 1) {
    const size_t k0 = lo * kChunk;
    if (k - k0 >= kChunk) {
      chunkPartials<D, RX, NW, kChunk>(x, ldx, w, ldw, k0, kChunk, p);
    } else {
      chunkPartials<D, RX, NW, 0>(x, ldx, w, ldw, k0, k - k0, p);
    }
    return;
  }
  const size_t mid = lo + (hi - lo) / 2;
  TileSums<RX, NW> q;
  treeSums<D, RX, NW>(x, ldx, w, ldw, k, lo, mid, p);
  treeSums<D, RX, NW>(x, ldx, w, ldw, k, mid, hi, q);
  for (int r = 0; r < RX; r++)
    for (int j = 0; j < NW; j++) p.v[r][j] += q.v[r][j];
}

// out[r*ldo + j] = canonical dot(x row r, w row j) (+ bias[j]) for r < RX, j < NW, over all K > 0.
template <DType D, int RX, int NW>
void dotTile(const float* x, size_t ldx, const typename WeightTraits<D>::T* w, size_t ldw, size_t k, float* out,
             size_t ldo, const float* bias) {
  TileSums<RX, NW> p;
  treeSums<D, RX, NW>(x, ldx, w, ldw, k, 0, (k + kChunk - 1) / kChunk, p);
  for (int r = 0; r < RX; r++)
    for (int j = 0; j < NW; j++) out[r * ldo + j] = bias ? p.v[r][j] + bias[j] : p.v[r][j];
}

// Output features [n0, n1) for RX rows, in groups of NW weight rows (then single rows).
template <DType D, int RX, int NW>
void rowsTimesBlock(const float* x, const typename WeightTraits<D>::T* w, size_t n, size_t k, size_t n0, size_t n1,
                    float* out, const float* bias) {
  size_t j = n0;
  for (; j + NW <= n1; j += NW) dotTile<D, RX, NW>(x, k, w + j * k, k, k, out + j, n, bias ? bias + j : nullptr);
  for (; j < n1; j++) dotTile<D, RX, 1>(x, k, w + j * k, k, k, out + j, n, bias ? bias + j : nullptr);
}

// m rows against output features [n0, n1): each group of NW weight rows is read from memory by
// the first group of RX rows and from cache by the others.
template <DType D, int RX, int NW>
void rowGroupsTimesBlock(const float* x, size_t m, const typename WeightTraits<D>::T* w, size_t n, size_t k,
                         size_t n0, size_t n1, float* out, const float* bias) {
  size_t j = n0;
  for (; j + NW <= n1; j += NW) {
    const float* b = bias ? bias + j : nullptr;
    size_t r = 0;
    for (; r + RX <= m; r += RX) dotTile<D, RX, NW>(x + r * k, k, w + j * k, k, k, out + r * n + j, n, b);
    for (; r < m; r++) dotTile<D, 1, NW>(x + r * k, k, w + j * k, k, k, out + r * n + j, n, b);
  }
  for (; j < n1; j++)
    for (size_t r = 0; r < m; r++)
      dotTile<D, 1, 1>(x + r * k, k, w + j * k, k, k, out + r * n + j, n, bias ? bias + j : nullptr);
}

template <DType D>
void matmulTyped(float* out, const float* x, size_t m, const typename WeightTraits<D>::T* w, size_t n, size_t k,
                 const float* bias) {
  const size_t tasks = (n + kBlockN - 1) / kBlockN;
  parallelFor(tasks, [&](size_t task, int) {
    const size_t n0 = task * kBlockN, n1 = std::min(n, n0 + kBlockN);
    if (m == 1) {
      rowsTimesBlock<D, 1, 8>(x, w, n, k, n0, n1, out, bias);
    } else if (m == 2) {
      rowsTimesBlock<D, 2, 6>(x, w, n, k, n0, n1, out, bias);
    } else if (m == 3) {
      rowsTimesBlock<D, 3, 6>(x, w, n, k, n0, n1, out, bias);
    } else if (m <= kMaxNarrowRows) {
      rowGroupsTimesBlock<D, 2, 6>(x, m, w, n, k, n0, n1, out, bias);
    } else {
      rowGroupsTimesBlock<D, 4, 3>(x, m, w, n, k, n0, n1, out, bias);
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
  switch (dtype) {
    case DType::F32: matmulTyped<DType::F32>(out, x, m, static_cast<const float*>(w), n, k, bias); break;
    case DType::F16: matmulTyped<DType::F16>(out, x, m, static_cast<const uint16_t*>(w), n, k, bias); break;
    case DType::BF16: matmulTyped<DType::BF16>(out, x, m, static_cast<const uint16_t*>(w), n, k, bias); break;
  }
}

}  // namespace seesaw
