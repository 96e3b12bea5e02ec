// The canonical matrix product, written once over a vector-ISA policy (matmul_lanes.h) and
// compiled once per ISA: matmul_avx2.cc and matmul_avx512.cc include this header after choosing
// their target. Everything here has internal linkage, so the two compilations never share a
// symbol (an AVX-512 copy of an inline function must not be picked by the linker for the AVX2 path).
//
// Every output is the same expression whatever the tile it lands in, the number of rows, the
// rows around it or the thread split (docs/determinism.md):
//   - K is cut into `leaves` equal leaves (1 for most weights; 8 / T for a row-parallel weight, so
//     that a TP rank's leaves are a subtree of the single device's tree);
//   - a leaf partial is 16 lane accumulators (element i of the leaf -> lane i mod 16, fused
//     multiply-add in increasing i) summed by the lane tree of laneSums, then the leaf's scalar
//     tail (length mod 16) added by fused multiply-add in increasing order;
//   - leaf partials are combined by the halving tree, and the bias is added last.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "matmul.h"
#include "matmul_lanes.h"
#include "touch.h"
#include "thread_pool.h"

namespace seesaw {
namespace {

constexpr size_t kBlockN = 64;                  // output features per scheduled task
constexpr size_t kRowBlockBytes = 192 * 1024;   // activation rows revisited per weight tile (L2)

inline size_t smaller(size_t a, size_t b) { return a < b ? a : b; }

// sums[r * C + j] = leaf partial of x row r and weight row j over K elements [k0, k0 + len).
template <class P, DType D, int R, int C>
__attribute__((always_inline)) inline void leafPartials(const float* x, size_t ldx, const typename Elem<D>::T* w,
                                                        size_t ldw, size_t k0, size_t len, float* sums) {
  typename P::Acc c[R * C];
#pragma GCC unroll 32
  for (int i = 0; i < R * C; i++) c[i] = P::zero();
  const size_t body = len & ~size_t(15);
  for (size_t i = 0; i < body; i += 16) {
    typename P::Acc xv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) xv[r] = P::loadX(x + r * ldx + k0 + i);
#pragma GCC unroll 16
    for (int j = 0; j < C; j++) {
      const typename P::Acc wv = P::template loadW<D>(w + j * ldw + k0 + i);
#pragma GCC unroll 8
      for (int r = 0; r < R; r++) c[r * C + j] = P::fma(xv[r], wv, c[r * C + j]);
    }
  }
#pragma GCC unroll 2
  for (int g = 0; g < R * C; g += 16) P::laneSums(c + g, R * C - g < 16 ? R * C - g : 16, sums + g);
  if (body == len) return;
  for (int r = 0; r < R; r++) {
    for (int j = 0; j < C; j++) {
      float s = sums[r * C + j];
      for (size_t i = k0 + body; i < k0 + len; i++) s = std::fma(x[r * ldx + i], Elem<D>::scalar(w + j * ldw + i), s);
      sums[r * C + j] = s;
    }
  }
}

// p[lo] = tree(lo, hi) over leaf partials p[leaf][0..count): the halving tree, in place.
inline void halvingTree(float (*p)[32], size_t lo, size_t hi, int count) {
  if (hi - lo == 1) return;
  const size_t mid = lo + (hi - lo) / 2;
  halvingTree(p, lo, mid, count);
  halvingTree(p, mid, hi, count);
  for (int i = 0; i < count; i++) p[lo][i] += p[mid][i];
}

// out[r * ldo + j] = canonical dot(x row r, w row j) (+ bias[j]) for r < R, j < C.
template <class P, DType D, int R, int C>
void dotTile(const float* x, size_t ldx, const typename Elem<D>::T* w, size_t ldw, size_t k, size_t leaves, float* out,
             size_t ldo, const float* bias) {
  static_assert(R * C <= 32, "a tile's partials fit one row of the leaf table");
  float p[kMaxMatmulLeaves][32];
  const size_t leafLen = k / leaves;
  for (size_t s = 0; s < leaves; s++) leafPartials<P, D, R, C>(x, ldx, w, ldw, s * leafLen, leafLen, p[s]);
  halvingTree(p, 0, leaves, R * C);
  for (int r = 0; r < R; r++)
    for (int j = 0; j < C; j++) out[r * ldo + j] = bias ? p[0][r * C + j] + bias[j] : p[0][r * C + j];
}

struct Problem {
  const float* x;
  size_t m, n, k, leaves;
  float* out;
  const float* bias;
};

// Rows [r0, r1) x weight rows [j0, j1) in R x C tiles, the edges in 3-, 2- or 1-row and
// 1-column tiles. The block's weights (64 rows, tens of KB) are first read in one streaming
// pass, so every tile then finds them in L2: read by the first row tile instead, their misses
// interleaved with the arithmetic hid badly (as in attention.cc). Measured on one core with
// DRAM-resident bf16 weights: 1/2/3/8/32 rows at 26/46/45/74/140 GFLOP/s without it,
// 28/55/74/128/170 with it; 512 rows unchanged (~192).
template <class P, DType D, int R, int C>
void tileGrid(const Problem& pr, const typename Elem<D>::T* w, size_t r0, size_t r1, size_t j0, size_t j1) {
  const size_t k = pr.k;
  touchBytes(w + j0 * k, (j1 - j0) * k * sizeof(typename Elem<D>::T));
  auto tile = [&](auto rows, auto cols, size_t r, size_t j) {
    dotTile<P, D, decltype(rows)::value, decltype(cols)::value>(pr.x + r * k, k, w + j * k, k, k, pr.leaves,
                                                                pr.out + r * pr.n + j, pr.n,
                                                                pr.bias ? pr.bias + j : nullptr);
  };
  using One = std::integral_constant<int, 1>;
  using Two = std::integral_constant<int, 2>;
  using Three = std::integral_constant<int, 3>;
  using Rows = std::integral_constant<int, R>;
  using Cols = std::integral_constant<int, C>;
  // The rows after the last full tile go in one 3- or 2-row tile where they fit, then single
  // rows: a 1-row tile loads a weight vector for one FMA, so a batch of 7 on 4-row tiles
  // spent as many weight loads on its last 3 rows as on the first 4.
  auto edgeRows = [&](auto cols, size_t r, size_t j) {
    size_t left = r1 - r;
    if constexpr (R > 3) {
      if (left == 3) return tile(Three{}, cols, r, j);
    }
    if constexpr (R > 2) {
      if (left == 2) return tile(Two{}, cols, r, j);
    }
    for (; r < r1; r++) tile(One{}, cols, r, j);
  };
  size_t j = j0;
  for (; j + C <= j1; j += C) {
    size_t r = r0;
    for (; r + R <= r1; r += R) tile(Rows{}, Cols{}, r, j);
    edgeRows(Cols{}, r, j);
  }
  for (; j < j1; j++) {
    size_t r = r0;
    for (; r + R <= r1; r += R) tile(Rows{}, One{}, r, j);
    edgeRows(One{}, r, j);
  }
}

// The whole product: output features in blocks over the thread pool; within a block, row
// blocks small enough to stay in L2 while every weight tile of the block passes over them.
template <class P, DType D>
void canonicalMatmul(const Problem& pr, const typename Elem<D>::T* w) {
  const size_t tasks = (pr.n + kBlockN - 1) / kBlockN;
  const size_t rowBlock = smaller(pr.m, static_cast<size_t>(P::kRows) *
                                            (kRowBlockBytes / (pr.k * sizeof(float) * P::kRows) + 1));
  parallelFor(tasks, [&](size_t task, int) {
    const size_t j0 = task * kBlockN, j1 = smaller(pr.n, j0 + kBlockN);
    if (pr.m == 1) {
      tileGrid<P, D, 1, P::kGemvCols>(pr, w, 0, 1, j0, j1);
    } else if (pr.m == 2) {
      tileGrid<P, D, 2, P::kPairCols>(pr, w, 0, 2, j0, j1);
    } else {
      for (size_t r0 = 0; r0 < pr.m; r0 += rowBlock) {
        tileGrid<P, D, P::kRows, P::kCols>(pr, w, r0, smaller(pr.m, r0 + rowBlock), j0, j1);
      }
    }
  });
}

template <class P>
void canonicalMatmulAnyType(const Problem& pr, const void* w, DType dtype) {
  switch (dtype) {
    case DType::F32: canonicalMatmul<P, DType::F32>(pr, static_cast<const float*>(w)); break;
    case DType::F16: canonicalMatmul<P, DType::F16>(pr, static_cast<const uint16_t*>(w)); break;
    case DType::BF16: canonicalMatmul<P, DType::BF16>(pr, static_cast<const uint16_t*>(w)); break;
  }
}

}  // namespace
}  // namespace seesaw
