// Paged attention. A work item is (sequence, range of KV heads, tile of queries). For each
// K/V block of the sequence, the item first streams the block's slices for its heads (they
// are contiguous: [block][kvHead][token][d]) into cache with a plain read, then every query
// row of the GQA group(s) is scored and accumulated against them in 4-row register tiles, so
// a K or V vector is loaded once for four rows. Softmax is online per row (running max m,
// running sum l, unnormalised output acc): no [queries][context] score matrix exists.
// Measured (32 seqs x 1024 ctx, d 128, 32/8 heads): per-row scalar loops 47 ms, row tiles
// 13 ms when K/V sit in L3 but 45-55 ms from DRAM; the read-then-compute order brings the
// DRAM case to ~20 ms (interleaving the misses with the arithmetic hid them badly; software
// prefetch of the next block did not help).
#include "attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "simd.h"
#include "thread_pool.h"
#include "touch.h"

namespace seesaw {
namespace {

// Query rows (heads x tokens) per work item: enough to amortise a K/V block load, small
// enough that prefill yields many items for the pool.
constexpr size_t kRowsPerItem = 32;
// Query rows processed together against one K/V block (one K/V load feeds them all).
constexpr size_t kTileRows = 4;

struct WorkItem {
  uint32_t seq;
  uint32_t kvHeadBegin;  // KV heads [kvHeadBegin, kvHeadEnd): consecutive in each cache block
  uint32_t kvHeadEnd;
  uint32_t qBegin;  // first query index inside the sequence
  uint32_t qEnd;
};

struct Scratch {
  std::vector<float> q;       // [rows][headDim] queries pre-multiplied by scale
  std::vector<float> acc;     // [rows][headDim]
  std::vector<float> runMax;  // [rows]
  std::vector<float> runSum;  // [rows]
  std::vector<size_t> pos;    // [rows] absolute position of the row's query
  std::vector<float> scores;  // [blockSize rounded up to 8]
};

thread_local Scratch tlsScratch;

// Four horizontal sums at once: [sum(a), sum(b), sum(c), sum(d)].
inline __m128 reduce4(__m256 a, __m256 b, __m256 c, __m256 d) {
  __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// scores[r*ld + j] = dot(q_r, k_j) for R query rows (q + r*d) and keys j < nk (rows of k).
// A tile of R rows x 2 keys loads each K vector once for all rows of the GQA group. Every score
// is computed by the same expression (8 FMA lanes, then reduce4's pairwise sum, then the scalar
// tail), whether its key is paired, the odd last one (paired with itself), or how many rows the
// tile has: a row's scores never depend on the rows tiled with it (docs/determinism.md).
// K and V elements are any DType (f32, or a 16-bit cache converted in registers, exactly).
template <DType KV>
using KvT = typename WeightTraits<KV>::T;

template <DType KV, int R>
inline void scoreKeyPair(float* scores, size_t ld, const float* q, const KvT<KV>* k0, const KvT<KV>* k1, size_t j,
                         bool both, size_t d) {
  const size_t dv = d & ~size_t(7);
  const __m256 zero = _mm256_setzero_ps();
  __m256 a[4][2] = {{zero, zero}, {zero, zero}, {zero, zero}, {zero, zero}};
  for (size_t i = 0; i < dv; i += 8) {
    const __m256 kv0 = WeightTraits<KV>::load(k0 + i), kv1 = WeightTraits<KV>::load(k1 + i);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      const __m256 qv = _mm256_loadu_ps(q + r * d + i);
      a[r][0] = _mm256_fmadd_ps(qv, kv0, a[r][0]);
      a[r][1] = _mm256_fmadd_ps(qv, kv1, a[r][1]);
    }
  }
  alignas(16) float sums[8];
  _mm_store_ps(sums, reduce4(a[0][0], a[0][1], a[1][0], a[1][1]));
  if constexpr (R > 2) _mm_store_ps(sums + 4, reduce4(a[2][0], a[2][1], a[3][0], a[3][1]));
  for (int r = 0; r < R; r++) {
    float s0 = sums[2 * r], s1 = sums[2 * r + 1];
    for (size_t i = dv; i < d; i++) {
      s0 = std::fma(q[r * d + i], WeightTraits<KV>::scalar(k0 + i), s0);
      s1 = std::fma(q[r * d + i], WeightTraits<KV>::scalar(k1 + i), s1);
    }
    scores[r * ld + j] = s0;
    if (both) scores[r * ld + j + 1] = s1;
  }
}

template <DType KV, int R>
inline void scoreRows(float* scores, size_t ld, const float* q, const KvT<KV>* k, size_t nk, size_t d) {
  size_t j = 0;
  for (; j + 2 <= nk; j += 2) scoreKeyPair<KV, R>(scores, ld, q, k + j * d, k + (j + 1) * d, j, true, d);
  if (j < nk) scoreKeyPair<KV, R>(scores, ld, q, k + j * d, k + j * d, j, false, d);
}

// acc_r = acc_r * scaleOld[r] + sum_{j < nk} p[r*ld + j] * v_j for R rows (acc + r*d): a tile
// of R rows x NV vectors of the head dimension stays in registers over the block's keys, and
// each V vector is loaded once for all rows.
template <DType KV, int R, int NV>
inline void accumulateTile(float* acc, const float* scaleOld, const float* p, size_t ld, const KvT<KV>* v, size_t nk,
                           size_t d) {
  __m256 a[R][NV];
#pragma GCC unroll 4
  for (int r = 0; r < R; r++) {
    const __m256 so = _mm256_set1_ps(scaleOld[r]);
#pragma GCC unroll 2
    for (int c = 0; c < NV; c++) a[r][c] = _mm256_mul_ps(_mm256_loadu_ps(acc + r * d + 8 * c), so);
  }
  for (size_t j = 0; j < nk; j++) {
    __m256 vv[NV];
#pragma GCC unroll 2
    for (int c = 0; c < NV; c++) vv[c] = WeightTraits<KV>::load(v + j * d + 8 * c);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      const __m256 pj = _mm256_broadcast_ss(p + r * ld + j);
#pragma GCC unroll 2
      for (int c = 0; c < NV; c++) a[r][c] = _mm256_fmadd_ps(pj, vv[c], a[r][c]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; r++)
#pragma GCC unroll 2
    for (int c = 0; c < NV; c++) _mm256_storeu_ps(acc + r * d + 8 * c, a[r][c]);
}

template <DType KV, int R>
inline void accumulateRows(float* acc, const float* scaleOld, const float* p, size_t ld, const KvT<KV>* v, size_t nk,
                           size_t d) {
  size_t i = 0;
  for (; i + 16 <= d; i += 16) accumulateTile<KV, R, 2>(acc + i, scaleOld, p, ld, v + i, nk, d);
  if (i + 8 <= d) {
    accumulateTile<KV, R, 1>(acc + i, scaleOld, p, ld, v + i, nk, d);
    i += 8;
  }
  for (; i < d; i++) {
    for (int r = 0; r < R; r++) {
      float a = acc[r * d + i] * scaleOld[r];
      for (size_t j = 0; j < nk; j++) a += p[r * ld + j] * WeightTraits<KV>::scalar(v + j * d + i);
      acc[r * d + i] = a;
    }
  }
}

template <DType KV, int R>
inline void scoreAndAccumulate(float* scores, size_t ld, const float* q, const KvT<KV>* k, const KvT<KV>* v,
                               float* acc, float* runMax, float* runSum, const size_t* nkOfRow, size_t nkMax,
                               size_t d) {
  scoreRows<KV, R>(scores, ld, q, k, nkMax, d);
  float scaleOld[R];
  for (int r = 0; r < R; r++) {
    float* sr = scores + r * ld;
    const size_t nk = nkOfRow[r];
    if (nk == 0) {  // this row's query precedes the block: contributes nothing, keeps its state
      std::fill(sr, sr + nkMax, 0.0f);
      scaleOld[r] = 1.0f;
      continue;
    }
    float blockMax = sr[0];
    for (size_t j = 1; j < nk; j++) blockMax = std::max(blockMax, sr[j]);
    const float newMax = std::max(runMax[r], blockMax);
    // exp(-inf) = 0 on the first block, which also clears the zero-initialised acc.
    scaleOld[r] = std::exp(runMax[r] - newMax);
    const __m256 vmax = _mm256_set1_ps(newMax);
    __m256 sum = _mm256_setzero_ps();
    size_t j = 0;
    for (; j + 8 <= nk; j += 8) {
      __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(sr + j), vmax));
      _mm256_storeu_ps(sr + j, e);
      sum = _mm256_add_ps(sum, e);
    }
    float blockSum = hsum(sum);
    for (; j < nk; j++) {
      sr[j] = std::exp(sr[j] - newMax);
      blockSum += sr[j];
    }
    for (; j < nkMax; j++) sr[j] = 0.0f;  // causally masked for this row
    runSum[r] = runSum[r] * scaleOld[r] + blockSum;
    runMax[r] = newMax;
  }
  accumulateRows<KV, R>(acc, scaleOld, scores, ld, v, nkMax, d);
}

template <DType KV>
void runItem(const WorkItem& item, float* out, const float* q, size_t qRowStride, const KvT<KV>* kCache,
             const KvT<KV>* vCache, const int32_t* queryStart, const int32_t* contextLens,
             const int32_t* blockTables, const AttentionShape& sh, float scale) {
  const size_t d = sh.headDim, bs = sh.blockSize;
  const size_t group = sh.numHeads / sh.numKvHeads;
  const size_t numQueries = static_cast<size_t>(queryStart[item.seq + 1] - queryStart[item.seq]);
  const size_t ctx = static_cast<size_t>(contextLens[item.seq]);
  const size_t firstPos = ctx - numQueries;
  const size_t tokens = item.qEnd - item.qBegin;
  const size_t heads = item.kvHeadEnd - item.kvHeadBegin;
  const size_t rowsPerHead = tokens * group;
  const size_t rows = heads * rowsPerHead;

  Scratch& s = tlsScratch;
  if (s.q.size() < rows * d) {
    s.q.resize(rows * d);
    s.acc.resize(rows * d);
  }
  if (s.runMax.size() < rows) {
    s.runMax.resize(rows);
    s.runSum.resize(rows);
    s.pos.resize(rows);
  }
  const size_t scoreLen = (bs + 7) & ~size_t(7);
  if (s.scores.size() < kTileRows * scoreLen) s.scores.resize(kTileRows * scoreLen);

  // Row r = (KV head, token i, query head within the group hg), in that order: within one KV
  // head positions never decrease along r, so the last row of a tile has the most keys.
  auto rowOf = [&](size_t h, size_t i, size_t hg) { return (h * tokens + i) * group + hg; };
  for (size_t h = 0; h < heads; h++) {
    for (size_t i = 0; i < tokens; i++) {
      const size_t t = static_cast<size_t>(queryStart[item.seq]) + item.qBegin + i;
      for (size_t hg = 0; hg < group; hg++) {
        const size_t r = rowOf(h, i, hg);
        const float* src = q + t * qRowStride + ((item.kvHeadBegin + h) * group + hg) * d;
        for (size_t e = 0; e < d; e++) s.q[r * d + e] = src[e] * scale;
        std::fill(s.acc.begin() + r * d, s.acc.begin() + (r + 1) * d, 0.0f);
        s.runMax[r] = -std::numeric_limits<float>::infinity();
        s.runSum[r] = 0.0f;
        s.pos[r] = firstPos + item.qBegin + i;
      }
    }
  }

  const size_t lastPos = firstPos + item.qEnd - 1;
  const size_t numBlocks = lastPos / bs + 1;
  const int32_t* table = blockTables + item.seq * sh.maxBlocksPerSeq;
  float* scores = s.scores.data();
  for (size_t b = 0; b < numBlocks; b++) {
    const size_t blockStart = b * bs;
    {
      // Pull this block's K/V slices (contiguous over the item's heads) in with a plain
      // streaming read first: interleaved with the arithmetic below, the misses of these short,
      // scattered slices are not overlapped well (measured 2-4x slower than read then compute).
      const size_t first = ((static_cast<size_t>(table[b]) * sh.numKvHeads + item.kvHeadBegin) * bs) * d;
      const size_t bytes = heads * bs * d * sizeof(KvT<KV>);
      touchBytes(kCache + first, bytes);
      touchBytes(vCache + first, bytes);
    }
    for (size_t h = 0; h < heads; h++) {
      const size_t base = ((static_cast<size_t>(table[b]) * sh.numKvHeads + item.kvHeadBegin + h) * bs) * d;
      const KvT<KV>* kb = kCache + base;
      const KvT<KV>* vb = vCache + base;
      for (size_t r0 = h * rowsPerHead; r0 < (h + 1) * rowsPerHead; r0 += kTileRows) {
        const size_t tileRows = std::min(kTileRows, (h + 1) * rowsPerHead - r0);
        size_t nkOfRow[kTileRows];
        for (size_t r = 0; r < tileRows; r++) {
          const size_t pos = s.pos[r0 + r];
          nkOfRow[r] = pos < blockStart ? 0 : std::min(bs, pos + 1 - blockStart);
        }
        const size_t nkMax = nkOfRow[tileRows - 1];
        if (nkMax == 0) continue;
        float* qr = s.q.data() + r0 * d;
        float* acc = s.acc.data() + r0 * d;
        float* rm = s.runMax.data() + r0;
        float* rs = s.runSum.data() + r0;
        switch (tileRows) {
          case 4: scoreAndAccumulate<KV, 4>(scores, scoreLen, qr, kb, vb, acc, rm, rs, nkOfRow, nkMax, d); break;
          case 3: scoreAndAccumulate<KV, 3>(scores, scoreLen, qr, kb, vb, acc, rm, rs, nkOfRow, nkMax, d); break;
          case 2: scoreAndAccumulate<KV, 2>(scores, scoreLen, qr, kb, vb, acc, rm, rs, nkOfRow, nkMax, d); break;
          default: scoreAndAccumulate<KV, 1>(scores, scoreLen, qr, kb, vb, acc, rm, rs, nkOfRow, nkMax, d); break;
        }
      }
    }
  }

  const size_t outRow = sh.numHeads * d;
  for (size_t h = 0; h < heads; h++) {
    for (size_t i = 0; i < tokens; i++) {
      const size_t t = static_cast<size_t>(queryStart[item.seq]) + item.qBegin + i;
      for (size_t hg = 0; hg < group; hg++) {
        const size_t r = rowOf(h, i, hg);
        const float inv = 1.0f / s.runSum[r];
        float* o = out + t * outRow + ((item.kvHeadBegin + h) * group + hg) * d;
        for (size_t e = 0; e < d; e++) o[e] = s.acc[r * d + e] * inv;
      }
    }
  }
}

}  // namespace

void pagedAttention(float* out, const float* q, size_t qRowStride, const void* kCache, const void* vCache,
                    DType kvType, const int32_t* queryStart, const int32_t* contextLens, const int32_t* blockTables,
                    const AttentionShape& shape, float scale) {
  const size_t group = shape.numHeads / shape.numKvHeads;
  const size_t tileTokens = std::max<size_t>(1, kRowsPerItem / group);
  size_t queryTiles = 0;
  for (size_t seq = 0; seq < shape.numSeqs; seq++) {
    const size_t nq = static_cast<size_t>(queryStart[seq + 1] - queryStart[seq]);
    queryTiles += (nq + tileTokens - 1) / tileTokens;
  }
  // All KV heads of a block lie together in the cache, so an item covering them all reads
  // one contiguous stretch per block. Split heads only as far as needed to give every pool
  // thread several items.
  const size_t wantItems = 4 * static_cast<size_t>(currentThreadCount());
  size_t headsPerItem = shape.numKvHeads;
  while (headsPerItem > 1 && queryTiles * ((shape.numKvHeads + headsPerItem - 1) / headsPerItem) < wantItems)
    headsPerItem = (headsPerItem + 1) / 2;
  std::vector<WorkItem> items;
  items.reserve(queryTiles * ((shape.numKvHeads + headsPerItem - 1) / headsPerItem));
  for (size_t seq = 0; seq < shape.numSeqs; seq++) {
    const size_t nq = static_cast<size_t>(queryStart[seq + 1] - queryStart[seq]);
    // Later query tiles attend to more keys: queue them first so the dynamic schedule ends
    // with the short items.
    for (size_t end = nq; end > 0;) {
      const size_t begin = end > tileTokens ? end - tileTokens : 0;
      for (size_t h = 0; h < shape.numKvHeads; h += headsPerItem)
        items.push_back({static_cast<uint32_t>(seq), static_cast<uint32_t>(h),
                         static_cast<uint32_t>(std::min(shape.numKvHeads, h + headsPerItem)),
                         static_cast<uint32_t>(begin), static_cast<uint32_t>(end)});
      end = begin;
    }
  }
  auto run = [&](auto kv) {
    constexpr DType KV = decltype(kv)::value;
    const auto* k = static_cast<const KvT<KV>*>(kCache);
    const auto* v = static_cast<const KvT<KV>*>(vCache);
    parallelFor(items.size(), [&](size_t i, int) {
      runItem<KV>(items[i], out, q, qRowStride, k, v, queryStart, contextLens, blockTables, shape, scale);
    });
  };
  switch (kvType) {
    case DType::F32: run(std::integral_constant<DType, DType::F32>()); break;
    case DType::BF16: run(std::integral_constant<DType, DType::BF16>()); break;
    case DType::F16: run(std::integral_constant<DType, DType::F16>()); break;
  }
}

}  // namespace seesaw
