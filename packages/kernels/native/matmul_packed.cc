// Many-row matrix product in the outer-product form. The weight [N][K] is repacked, one
// (NB x KC) block at a time, into panels of 16 output features laid out [KC][16] in f32 (the
// dtype conversion happens here, in registers, into a thread-local cache-sized buffer: the full
// weight is never widened). A 6x16 register tile then does 12 FMAs per 2 panel loads and
// 6 activation broadcasts, with no horizontal sums. Each weight element is packed once per
// call and reused by every activation row.
//
// Loop order per task (a block of NB output features, handed out dynamically over the pool):
//   K blocks -> pack NB x KC -> panels (16 features, [KC][16] = 16-24 KiB, stays in L1)
//   -> 6-row groups of activations (read from L2) -> 6x16 tile.
#include "matmul_packed.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "thread_pool.h"

namespace seesaw {
namespace {

constexpr size_t kPanel = 16;     // output features per panel (two f32 vectors)
constexpr size_t kTileRows = 6;   // activation rows per register tile
constexpr size_t kBlockK = 384;   // KC
constexpr size_t kBlockN = 96;    // NB: output features per task (multiple of kPanel)

// c[r][0..16) (+)= sum_k a[r*lda + k] * panel[k][0..16) for r < MR.
template <int MR>
__attribute__((always_inline)) inline void tile(const float* a, size_t lda, const float* panel, size_t kc, float* c,
                                                size_t ldc, bool first) {
  const __m256 z = _mm256_setzero_ps();
  __m256 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z, c40 = z, c41 = z, c50 = z, c51 = z;
  const float* a0 = a;
  const float* a1 = a + lda;
  const float* a2 = a + 2 * lda;
  const float* a3 = a + 3 * lda;
  const float* a4 = a + 4 * lda;
  const float* a5 = a + 5 * lda;
  for (size_t k = 0; k < kc; k++) {
    const __m256 b0 = _mm256_load_ps(panel + kPanel * k);
    const __m256 b1 = _mm256_load_ps(panel + kPanel * k + 8);
    __m256 x = _mm256_broadcast_ss(a0 + k);
    c00 = _mm256_fmadd_ps(x, b0, c00);
    c01 = _mm256_fmadd_ps(x, b1, c01);
    if constexpr (MR > 1) {
      x = _mm256_broadcast_ss(a1 + k);
      c10 = _mm256_fmadd_ps(x, b0, c10);
      c11 = _mm256_fmadd_ps(x, b1, c11);
    }
    if constexpr (MR > 2) {
      x = _mm256_broadcast_ss(a2 + k);
      c20 = _mm256_fmadd_ps(x, b0, c20);
      c21 = _mm256_fmadd_ps(x, b1, c21);
    }
    if constexpr (MR > 3) {
      x = _mm256_broadcast_ss(a3 + k);
      c30 = _mm256_fmadd_ps(x, b0, c30);
      c31 = _mm256_fmadd_ps(x, b1, c31);
    }
    if constexpr (MR > 4) {
      x = _mm256_broadcast_ss(a4 + k);
      c40 = _mm256_fmadd_ps(x, b0, c40);
      c41 = _mm256_fmadd_ps(x, b1, c41);
    }
    if constexpr (MR > 5) {
      x = _mm256_broadcast_ss(a5 + k);
      c50 = _mm256_fmadd_ps(x, b0, c50);
      c51 = _mm256_fmadd_ps(x, b1, c51);
    }
  }
  const __m256 acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int r = 0; r < MR; r++) {
    float* o = c + r * ldc;
    if (first) {
      _mm256_storeu_ps(o, acc[r][0]);
      _mm256_storeu_ps(o + 8, acc[r][1]);
    } else {
      _mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), acc[r][0]));
      _mm256_storeu_ps(o + 8, _mm256_add_ps(_mm256_loadu_ps(o + 8), acc[r][1]));
    }
  }
}

inline void tileRows(size_t mr, const float* a, size_t lda, const float* panel, size_t kc, float* c, size_t ldc,
                     bool first) {
  switch (mr) {
    case 6: tile<6>(a, lda, panel, kc, c, ldc, first); break;
    case 5: tile<5>(a, lda, panel, kc, c, ldc, first); break;
    case 4: tile<4>(a, lda, panel, kc, c, ldc, first); break;
    case 3: tile<3>(a, lda, panel, kc, c, ldc, first); break;
    case 2: tile<2>(a, lda, panel, kc, c, ldc, first); break;
    default: tile<1>(a, lda, panel, kc, c, ldc, first); break;
  }
}

// panel[k][j] = f32(w[j][k0 + k]) for j < width (the rest zero), k < kc: 8x8 transposes.
template <DType D>
void packPanel(const typename WeightTraits<D>::T* w, size_t ldw, size_t width, size_t k0, size_t kc, float* panel) {
  using Tr = WeightTraits<D>;
  const size_t kv = kc & ~size_t(7);
  for (size_t k = 0; k < kv; k += 8) {
    for (size_t half = 0; half < 2; half++) {
      __m256 r[8];
      for (size_t j = 0; j < 8; j++) {
        const size_t row = half * 8 + j;
        r[j] = row < width ? Tr::load(w + row * ldw + k0 + k) : _mm256_setzero_ps();
      }
      // 8x8 transpose: afterwards r[i] holds element k+i of the 8 rows.
      __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
      __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
      __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
      __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
      __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xee);
      __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xee);
      __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xee);
      __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xee);
      const __m256 cols[8] = {
          _mm256_permute2f128_ps(s0, s4, 0x20), _mm256_permute2f128_ps(s1, s5, 0x20),
          _mm256_permute2f128_ps(s2, s6, 0x20), _mm256_permute2f128_ps(s3, s7, 0x20),
          _mm256_permute2f128_ps(s0, s4, 0x31), _mm256_permute2f128_ps(s1, s5, 0x31),
          _mm256_permute2f128_ps(s2, s6, 0x31), _mm256_permute2f128_ps(s3, s7, 0x31)};
      for (size_t i = 0; i < 8; i++) _mm256_store_ps(panel + (k + i) * kPanel + half * 8, cols[i]);
    }
  }
  for (size_t k = kv; k < kc; k++)
    for (size_t j = 0; j < kPanel; j++) panel[k * kPanel + j] = j < width ? Tr::scalar(w + j * ldw + k0 + k) : 0.0f;
}

struct PackBuffer {
  std::vector<float> storage;
  float* get(size_t floats) {
    if (storage.size() < floats + 8) storage.resize(floats + 8);
    return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(storage.data()) + 31) & ~uintptr_t(31));
  }
};
thread_local PackBuffer tlsPack;

template <DType D>
void packedTyped(float* out, const float* x, size_t m, const typename WeightTraits<D>::T* w, size_t n, size_t k,
                 const float* bias) {
  const size_t tasks = (n + kBlockN - 1) / kBlockN;
  parallelFor(tasks, [&](size_t task, int) {
    const size_t n0 = task * kBlockN;
    const size_t nb = std::min(kBlockN, n - n0);
    const size_t panels = (nb + kPanel - 1) / kPanel;
    float* packed = tlsPack.get(panels * kPanel * kBlockK);
    alignas(32) float edge[kTileRows * kPanel];
    for (size_t k0 = 0; k0 < k; k0 += kBlockK) {
      const size_t kc = std::min(kBlockK, k - k0);
      const bool first = k0 == 0;
      for (size_t p = 0; p < panels; p++)
        packPanel<D>(w + (n0 + p * kPanel) * k, k, std::min(kPanel, nb - p * kPanel), k0, kc, packed + p * kPanel * kc);
      for (size_t p = 0; p < panels; p++) {
        const float* panel = packed + p * kPanel * kc;
        const size_t j0 = n0 + p * kPanel;
        const size_t width = std::min(kPanel, nb - p * kPanel);
        for (size_t r = 0; r < m; r += kTileRows) {
          const size_t mr = std::min(kTileRows, m - r);
          const float* a = x + r * k + k0;
          if (width == kPanel) {
            tileRows(mr, a, k, panel, kc, out + r * n + j0, n, first);
            continue;
          }
          // Last, partial panel: compute the full 16 columns into a scratch tile, keep `width`.
          tileRows(mr, a, k, panel, kc, edge, kPanel, true);
          for (size_t i = 0; i < mr; i++)
            for (size_t j = 0; j < width; j++) {
              float* o = out + (r + i) * n + j0 + j;
              *o = first ? edge[i * kPanel + j] : *o + edge[i * kPanel + j];
            }
        }
      }
    }
    if (bias)
      for (size_t r = 0; r < m; r++)
        for (size_t j = n0; j < n0 + nb; j++) out[r * n + j] += bias[j];
  });
}

}  // namespace

void matmulPacked(float* out, const float* x, size_t m, const void* w, DType dtype, size_t n, size_t k,
                  const float* bias) {
  switch (dtype) {
    case DType::F32: packedTyped<DType::F32>(out, x, m, static_cast<const float*>(w), n, k, bias); break;
    case DType::F16: packedTyped<DType::F16>(out, x, m, static_cast<const uint16_t*>(w), n, k, bias); break;
    case DType::BF16: packedTyped<DType::BF16>(out, x, m, static_cast<const uint16_t*>(w), n, k, bias); break;
  }
}

}  // namespace seesaw
