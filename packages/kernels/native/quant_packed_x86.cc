// SIMD tile kernels on packed Q8_0 / Q4_0 weights (layout in quant_packed.h), one per
// instruction set, each compiled for its own target so the addon loads on any AVX2 machine.
// Each computes, per block, the exact int32 dot products of 16 weight rows with up to 4
// activation rows (one weight load serves every activation row), then the f32 partial
// f32(d_w * d_x) * f32(isum): the same two roundings as the scalar kernel, so the same bits.
//   Q8_0 on VNNI: vpdpbusd takes unsigned x + 128 and signed w, giving sum(x*w) + 128*sum(w);
//                 the record's code sums take the offset off.
//   Q8_0 on AVX2: pmaddubsw on |w| and x carrying w's sign (pairs fit int16).
//   Q4_0:         unsigned nibbles times signed x, then - 8 * sum(x).
// GCC 12's AVX-512 headers build results from _mm512_undefined_* and warn about it where
// they are instantiated, so the warning is off for this whole file.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstring>

#include "quant_internal.h"
#include "quant_packed.h"

namespace seesaw {
namespace {

inline int32_t load4(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Activation row r's block b: codes (Q8_0 on VNNI: biased to unsigned), scale and code sum.
template <bool kBiased>
inline const void* rowBlock(const QuantizedRows& x, size_t r, size_t b) {
  if constexpr (kBiased) return x.biased + r * x.k + b * kQuantBlock;
  return x.q + r * x.k + b * kQuantBlock;
}

#define SEESAW_AVX512_VNNI "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"

// The halving tree over blocks lo..hi of kRows rows' partials at once (independent add chains),
// 16 columns per lane: each lane's adds are the scalar tree's. Results through `t`, not a
// return value: a 512-bit value returned from a recursive (not inlined) function takes the
// pre-AVX-512 ABI and loses its upper lanes.
template <size_t kRows>
__attribute__((target(SEESAW_AVX512_VNNI))) void tree512(const float* p, size_t nb, size_t lo, size_t hi,
                                                        __m512* t) {
#define SEESAW_AT(r, i) _mm512_loadu_ps(p + ((r) * nb + (i)) * kPackedTileRows)
  if (hi - lo == 1) {
    for (size_t r = 0; r < kRows; r++) t[r] = SEESAW_AT(r, lo);
  } else if (hi - lo == 2) {
    for (size_t r = 0; r < kRows; r++) t[r] = _mm512_add_ps(SEESAW_AT(r, lo), SEESAW_AT(r, lo + 1));
  } else if (hi - lo == 3) {
    for (size_t r = 0; r < kRows; r++)
      t[r] = _mm512_add_ps(SEESAW_AT(r, lo), _mm512_add_ps(SEESAW_AT(r, lo + 1), SEESAW_AT(r, lo + 2)));
  } else {
    const size_t mid = lo + (hi - lo) / 2;
    __m512 right[kRows];
    tree512<kRows>(p, nb, lo, mid, t);
    tree512<kRows>(p, nb, mid, hi, right);
    for (size_t r = 0; r < kRows; r++) t[r] = _mm512_add_ps(t[r], right[r]);
  }
#undef SEESAW_AT
}

// Partials of blocks [lo, hi) to partial[(r * (hi - lo) + b - lo) * 16 + c].
template <bool kQ8, size_t kRows>
__attribute__((target(SEESAW_AVX512_VNNI))) void partials512(float* partial, const uint8_t* tile, size_t lo,
                                                            size_t hi, const QuantizedRows& x) {
  constexpr size_t kCodeBytes = kQ8 ? 512 : 256;
  constexpr size_t kRecord = kCodeBytes + (kQ8 ? 64 : 32);
  const size_t nb = hi - lo;
  for (size_t b = lo; b < hi; b++) {
    const uint8_t* rec = tile + b * kRecord;
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + kCodeBytes)));
    __m512i w[8];
    __m512i offset = _mm512_setzero_si512();
    if constexpr (kQ8) {
      for (size_t g = 0; g < 8; g++) w[g] = _mm512_loadu_si512(rec + 64 * g);
      offset = _mm512_slli_epi32(
          _mm512_cvtepi16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + kCodeBytes + 32))), 7);
    } else {
      const __m512i mask = _mm512_set1_epi8(0x0f);
      for (size_t g = 0; g < 4; g++) {
        __m512i v = _mm512_loadu_si512(rec + 64 * g);
        w[g] = _mm512_and_si512(v, mask);
        w[g + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), mask);
      }
    }
    for (size_t r = 0; r < kRows; r++) {
      const auto* xb = static_cast<const uint8_t*>(rowBlock<kQ8>(x, r, b));
      // Two accumulators (even / odd groups): the byte-dot latency chain is half as long.
      __m512i acc0 = _mm512_setzero_si512();
      __m512i acc1 = _mm512_setzero_si512();
      for (size_t g = 0; g < 8; g += 2) {
        const __m512i x0 = _mm512_set1_epi32(load4(xb + 4 * g));
        const __m512i x1 = _mm512_set1_epi32(load4(xb + 4 * g + 4));
        acc0 = kQ8 ? _mm512_dpbusd_epi32(acc0, x0, w[g]) : _mm512_dpbusd_epi32(acc0, w[g], x0);
        acc1 = kQ8 ? _mm512_dpbusd_epi32(acc1, x1, w[g + 1]) : _mm512_dpbusd_epi32(acc1, w[g + 1], x1);
      }
      const size_t at = r * (x.k / kQuantBlock) + b;
      const __m512i correction = kQ8 ? offset : _mm512_set1_epi32(8 * x.sums[at]);
      const __m512i isum = _mm512_sub_epi32(_mm512_add_epi32(acc0, acc1), correction);
      const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(x.d[at]));
      _mm512_storeu_ps(partial + (r * nb + b - lo) * kPackedTileRows,
                       _mm512_mul_ps(scale, _mm512_cvtepi32_ps(isum)));
    }
  }
}

// Blocks a partial run covers at most: its partials (4 rows x 32 x 64 bytes) stay in L1
// next to the weight records they come from, however long K is.
constexpr size_t kChunkBlocks = 32;

// The halving tree over blocks [lo, hi): subtrees of at most kChunkBlocks leaves from their
// partials (the subtree's shape depends only on its size), the levels above them in registers
// (adds of sums only, so nothing for the compiler to fuse with a product).
template <bool kQ8, size_t kRows>
__attribute__((target(SEESAW_AVX512_VNNI))) void range512(float* partial, const uint8_t* tile, size_t lo, size_t hi,
                                                         const QuantizedRows& x, __m512* t) {
  if (hi - lo <= kChunkBlocks) {
    partials512<kQ8, kRows>(partial, tile, lo, hi, x);
    tree512<kRows>(partial, hi - lo, 0, hi - lo, t);
    return;
  }
  const size_t mid = lo + (hi - lo) / 2;
  __m512 right[kRows];
  range512<kQ8, kRows>(partial, tile, lo, mid, x, t);
  range512<kQ8, kRows>(partial, tile, mid, hi, x, right);
  for (size_t r = 0; r < kRows; r++) t[r] = _mm512_add_ps(t[r], right[r]);
}

template <bool kQ8, size_t kRows>
__attribute__((target(SEESAW_AVX512_VNNI))) void tile512(float* out, size_t outStride, size_t count,
                                                        float* partial, const uint8_t* tile, size_t nb,
                                                        const QuantizedRows& x) {
  __m512 sums[kRows];
  range512<kQ8, kRows>(partial, tile, 0, nb, x, sums);
  const __mmask16 keep = static_cast<__mmask16>((1u << count) - 1);
  for (size_t r = 0; r < kRows; r++) _mm512_mask_storeu_ps(out + r * outStride, keep, sums[r]);
}

// The 256-bit kernels: the tile as two halves of 8 rows (group g of half h at 64 g + 32 h).
// One body, instantiated for AVX2 (pmaddubsw) and AVX-VNNI (vpdpbusd) with their own targets.
#define SEESAW_PARTIALS_256(NAME, TARGET, VNNI)                                                            \
  template <bool kQ8, size_t kRows>                                                                        \
  __attribute__((target(TARGET))) void NAME(float* partial, const uint8_t* tile, size_t lo, size_t hi,    \
                                            const QuantizedRows& x) {                                      \
    const size_t nb = hi - lo;                                                                             \
    constexpr size_t kCodeBytes = kQ8 ? 512 : 256;                                                         \
    constexpr size_t kRecord = kCodeBytes + (kQ8 ? 64 : 32);                                               \
    [[maybe_unused]] const __m256i ones = _mm256_set1_epi16(1);                                            \
    const __m256i mask = _mm256_set1_epi8(0x0f);                                                           \
    for (size_t b = lo; b < hi; b++) {                                                                     \
      const uint8_t* rec = tile + b * kRecord;                                                             \
      for (size_t h = 0; h < 2; h++) {                                                                     \
        const __m256 dw =                                                                                  \
            _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rec + kCodeBytes + 16 * h))); \
        __m256i w[8]; /* VNNI Q8_0: codes; AVX2 Q8_0: |codes|; Q4_0: nibbles */                           \
        const __m256i* wcodes = reinterpret_cast<const __m256i*>(rec + 32 * h);                            \
        for (size_t g = 0; g < (kQ8 ? 8 : 4); g++) {                                                       \
          __m256i v = _mm256_loadu_si256(wcodes + 2 * g);                                                  \
          if (kQ8) {                                                                                       \
            w[g] = VNNI ? v : _mm256_sign_epi8(v, v);                                                      \
          } else {                                                                                         \
            w[g] = _mm256_and_si256(v, mask);                                                              \
            w[g + 4] = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);                                    \
          }                                                                                                \
        }                                                                                                  \
        __m256i offset = _mm256_setzero_si256();                                                           \
        if (kQ8 && VNNI)                                                                                   \
          offset = _mm256_slli_epi32(_mm256_cvtepi16_epi32(_mm_loadu_si128(                               \
                                         reinterpret_cast<const __m128i*>(rec + kCodeBytes + 32 + 16 * h))), \
                                     7);                                                                   \
        for (size_t r = 0; r < kRows; r++) {                                                               \
          const auto* xb = static_cast<const uint8_t*>(rowBlock<kQ8 && VNNI>(x, r, b));                    \
          __m256i acc0 = _mm256_setzero_si256();                                                           \
          __m256i acc1 = _mm256_setzero_si256();                                                           \
          for (size_t g = 0; g < 8; g += 2) {                                                              \
            const __m256i x0 = _mm256_set1_epi32(load4(xb + 4 * g));                                       \
            const __m256i x1 = _mm256_set1_epi32(load4(xb + 4 * g + 4));                                   \
            acc0 = SEESAW_GROUP_DOT_##VNNI(acc0, w[g], x0, wcodes + 2 * g);                                \
            acc1 = SEESAW_GROUP_DOT_##VNNI(acc1, w[g + 1], x1, wcodes + 2 * g + 2);                        \
          }                                                                                                \
          const size_t at = r * (x.k / kQuantBlock) + b;                                                   \
          const __m256i correction = (kQ8 && VNNI) ? offset : kQ8 ? _mm256_setzero_si256()                 \
                                                                  : _mm256_set1_epi32(8 * x.sums[at]);     \
          const __m256i isum = _mm256_sub_epi32(_mm256_add_epi32(acc0, acc1), correction);                 \
          const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(x.d[at]));                                 \
          _mm256_storeu_ps(partial + (r * nb + b - lo) * kPackedTileRows + 8 * h,                          \
                           _mm256_mul_ps(scale, _mm256_cvtepi32_ps(isum)));                                \
        }                                                                                                  \
      }                                                                                                    \
    }                                                                                                      \
  }

// AVX2: Q8_0 multiplies |w| by x carrying w's sign (the raw codes are re-read for the sign);
// Q4_0 the unsigned nibbles by x. pmaddubsw pairs, then pmaddwd with ones to int32.
#define SEESAW_GROUP_DOT_0(acc, w, x, raw)                                                           \
  _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(                                      \
                                              w, kQ8 ? _mm256_sign_epi8(x, _mm256_loadu_si256(raw)) : x), \
                                          ones))
// AVX-VNNI: Q8_0 biased x (unsigned) by signed codes; Q4_0 unsigned nibbles by signed x.
#define SEESAW_GROUP_DOT_1(acc, w, x, raw) \
  (kQ8 ? _mm256_dpbusd_avx_epi32(acc, x, w) : _mm256_dpbusd_avx_epi32(acc, w, x))

SEESAW_PARTIALS_256(partialsAvx2, "avx2,fma,f16c", 0)
SEESAW_PARTIALS_256(partialsAvxVnni, "avx2,fma,f16c,avxvnni", 1)

// The halving tree over blocks [lo, hi) for the 256-bit paths, as range512 does it: subtrees of
// at most kChunkBlocks leaves from their partials, the levels above as f32 adds of 16 sums.
template <size_t kRows, class Partials>
void range256(float* sums, float* partial, size_t lo, size_t hi, const Partials& partials) {
  if (hi - lo <= kChunkBlocks) {
    partials(partial, lo, hi);
    for (size_t r = 0; r < kRows; r++)
      halvingTree16(sums + r * kPackedTileRows, kPackedTileRows, partial + r * (hi - lo) * kPackedTileRows, hi - lo);
    return;
  }
  const size_t mid = lo + (hi - lo) / 2;
  float right[kRows * kPackedTileRows];
  range256<kRows>(sums, partial, lo, mid, partials);
  range256<kRows>(right, partial, mid, hi, partials);
  for (size_t i = 0; i < kRows * kPackedTileRows; i++) sums[i] += right[i];
}

// One tile's outputs on a 256-bit path, from that path's partials of block runs.
template <size_t kRows, class Partials>
void tile256(float* out, size_t outStride, size_t count, float* partial, size_t nb, const Partials& partials) {
  float sums[kRows * kPackedTileRows];
  range256<kRows>(sums, partial, 0, nb, partials);
  for (size_t r = 0; r < kRows; r++) std::memcpy(out + r * outStride, sums + r * kPackedTileRows, count * sizeof(float));
}

template <bool kQ8, size_t kRows>
void tileAvx2(float* out, size_t outStride, size_t count, float* partial, const uint8_t* tile, size_t nb,
              const QuantizedRows& x) {
  tile256<kRows>(out, outStride, count, partial, nb,
                 [&](float* p, size_t lo, size_t hi) { partialsAvx2<kQ8, kRows>(p, tile, lo, hi, x); });
}

template <bool kQ8, size_t kRows>
void tileAvxVnni(float* out, size_t outStride, size_t count, float* partial, const uint8_t* tile, size_t nb,
                 const QuantizedRows& x) {
  tile256<kRows>(out, outStride, count, partial, nb,
                 [&](float* p, size_t lo, size_t hi) { partialsAvxVnni<kQ8, kRows>(p, tile, lo, hi, x); });
}

// rows (1..4) -> the kernel specialised for that many activation rows.
static_assert(kPackedRowBlock == 4, "the dispatch below covers 1..4 rows");

#define SEESAW_ROWS_DISPATCH(NAME, KERNEL, Q8)                                                              \
  void NAME(float* out, size_t outStride, size_t count, float* partial, const uint8_t* tile, size_t nb,     \
            const QuantizedRows& x, size_t rows) {                                                          \
    switch (rows) {                                                                                         \
      case 1:                                                                                               \
        return KERNEL<Q8, 1>(out, outStride, count, partial, tile, nb, x);                                  \
      case 2:                                                                                               \
        return KERNEL<Q8, 2>(out, outStride, count, partial, tile, nb, x);                                  \
      case 3:                                                                                               \
        return KERNEL<Q8, 3>(out, outStride, count, partial, tile, nb, x);                                  \
      default:                                                                                              \
        return KERNEL<Q8, 4>(out, outStride, count, partial, tile, nb, x);                                  \
    }                                                                                                       \
  }

SEESAW_ROWS_DISPATCH(q8Avx2, tileAvx2, true)
SEESAW_ROWS_DISPATCH(q4Avx2, tileAvx2, false)
SEESAW_ROWS_DISPATCH(q8AvxVnni, tileAvxVnni, true)
SEESAW_ROWS_DISPATCH(q4AvxVnni, tileAvxVnni, false)
SEESAW_ROWS_DISPATCH(q8Avx512Vnni, tile512, true)
SEESAW_ROWS_DISPATCH(q4Avx512Vnni, tile512, false)

}  // namespace

PackedTileKernel x86PackedTileKernel(QuantType type, QuantPath path) {
  const bool q8 = type == QuantType::Q8_0;
  switch (path) {
    case QuantPath::Avx2:
      return q8 ? q8Avx2 : q4Avx2;
    case QuantPath::AvxVnni:
      return q8 ? q8AvxVnni : q4AvxVnni;
    case QuantPath::Avx512Vnni:
      return q8 ? q8Avx512Vnni : q4Avx512Vnni;
    default:
      return nullptr;
  }
}

}  // namespace seesaw
