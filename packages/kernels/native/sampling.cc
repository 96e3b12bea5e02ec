#include "sampling.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

namespace seesaw {

namespace {

// The greedy choice of one row: the first index of its greatest non-NaN value (0 when every
// value is NaN). This is the scalar definition; argmaxRow below is the fast path.
size_t argmaxRowScalar(const float* row, size_t n) {
  size_t best = 0;
  float bestValue = row[0];
  // Strictly greater keeps the first index on ties; a NaN never wins (unless it is row[0]
  // and nothing compares greater, which only happens for an all-NaN row).
  for (size_t i = 1; i < n; i++) {
    if (row[i] > bestValue || (std::isnan(bestValue) && !std::isnan(row[i]))) {
      bestValue = row[i];
      best = i;
    }
  }
  return best;
}

// The same choice, 32 values a round: each of 32 lanes (four 8-wide accumulators) keeps the
// first index of its greatest value with an ordered greater-than (false for NaN), then the lanes
// are merged by greatest value, lowest index on ties. That merge is exact, so the result is the
// scalar definition's bit for bit. The scalar loop took ~80 us for a 32k vocabulary here (a
// loop-carried compare it cannot vectorise); a greedy decode step pays it once per row.
size_t argmaxRow(const float* row, size_t n) {
  constexpr size_t kLanes = 32;
  if (n < 2 * kLanes || n > 0x7fffffffu) return argmaxRowScalar(row, n);
  const float negInf = -std::numeric_limits<float>::infinity();
  __m256 best[4];
  __m256i bestIndex[4];
  __m256i index[4];
  for (int a = 0; a < 4; a++) {
    best[a] = _mm256_set1_ps(negInf);
    bestIndex[a] = _mm256_set1_epi32(-1);  // no value above -inf seen in this lane yet
    index[a] = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    index[a] = _mm256_add_epi32(index[a], _mm256_set1_epi32(8 * a));
  }
  const __m256i step = _mm256_set1_epi32(kLanes);
  const size_t vectorEnd = n / kLanes * kLanes;
  for (size_t i = 0; i < vectorEnd; i += kLanes) {
    for (int a = 0; a < 4; a++) {
      const __m256 v = _mm256_loadu_ps(row + i + 8 * a);
      const __m256 greater = _mm256_cmp_ps(v, best[a], _CMP_GT_OQ);
      best[a] = _mm256_blendv_ps(best[a], v, greater);
      bestIndex[a] = _mm256_blendv_epi8(bestIndex[a], index[a], _mm256_castps_si256(greater));
      index[a] = _mm256_add_epi32(index[a], step);
    }
  }
  alignas(32) float values[kLanes];
  alignas(32) int32_t indices[kLanes];
  for (int a = 0; a < 4; a++) {
    _mm256_store_ps(values + 8 * a, best[a]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(indices + 8 * a), bestIndex[a]);
  }
  int64_t found = -1;
  float foundValue = negInf;
  for (size_t l = 0; l < kLanes; l++) {
    if (indices[l] < 0) continue;
    if (found < 0 || values[l] > foundValue || (values[l] == foundValue && indices[l] < found)) {
      found = indices[l];
      foundValue = values[l];
    }
  }
  // Every value of the vector part is -inf or NaN: rare enough for the scalar loop.
  if (found < 0) return argmaxRowScalar(row, n);
  for (size_t i = vectorEnd; i < n; i++) {
    if (row[i] > foundValue) {
      foundValue = row[i];
      found = static_cast<int64_t>(i);
    }
  }
  return static_cast<size_t>(found);
}

}  // namespace

void argmaxRows(int32_t* result, const float* logits, size_t rows, size_t n) {
  for (size_t r = 0; r < rows; r++) result[r] = static_cast<int32_t>(argmaxRow(logits + r * n, n));
}

namespace {

// Sorts ids 0..n-1 into the sampler's order (descending logit, ties by lower id) with an LSD
// radix sort on the logits' bits. Each item is (key << 32 | id), sorted by its key in three
// stable 11-bit passes, so equal logits keep id order; one read fills all three histograms, and
// a pass whose digit is the same for every item (logits of one sign and nearly one magnitude) is
// skipped. A full vocabulary (32k) sorts in a fraction of a millisecond, where a comparison sort
// of ids took several; this layout sorts ~1.3x faster than four 8-bit passes over separate key
// and id arrays did. z holds no NaN (the caller ranks NaN as -inf); -0 and +0 are one key, as
// they compare equal.
void sortIdsByDescendingLogit(const std::vector<float>& z, std::vector<int32_t>& order) {
  constexpr int kDigitBits = 11;
  constexpr uint32_t kDigitMask = (1u << kDigitBits) - 1;
  constexpr int kPasses = 3;  // 33 bits cover the 32-bit key
  const size_t n = z.size();
  std::vector<uint64_t> items(n), itemsTmp(n);
  std::vector<uint32_t> histogram(kPasses << kDigitBits, 0);
  for (size_t i = 0; i < n; i++) {
    const float v = z[i] == 0.0f ? 0.0f : z[i];
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    // Ascending float order as unsigned order, then inverted for descending.
    const uint32_t ascending = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
    const uint32_t key = ~ascending;
    items[i] = (static_cast<uint64_t>(key) << 32) | static_cast<uint32_t>(i);
    for (int pass = 0; pass < kPasses; pass++)
      histogram[(pass << kDigitBits) + ((key >> (kDigitBits * pass)) & kDigitMask)]++;
  }
  uint64_t* from = items.data();
  uint64_t* to = itemsTmp.data();
  for (int pass = 0; pass < kPasses; pass++) {
    uint32_t* offsets = histogram.data() + (pass << kDigitBits);
    bool allOneDigit = false;
    uint32_t before = 0;
    for (uint32_t digit = 0; digit <= kDigitMask; digit++) {
      const uint32_t count = offsets[digit];
      if (count == n) {
        allOneDigit = true;
        break;
      }
      offsets[digit] = before;
      before += count;
    }
    if (allOneDigit) continue;
    const int shift = 32 + kDigitBits * pass;
    for (size_t i = 0; i < n; i++) {
      const uint64_t item = from[i];
      to[offsets[(item >> shift) & kDigitMask]++] = item;
    }
    std::swap(from, to);
  }
  for (size_t i = 0; i < n; i++) order[i] = static_cast<int32_t>(static_cast<uint32_t>(from[i]));
}

}  // namespace

int32_t sampleRow(const float* logits, size_t n, double temperature, int64_t topK, double topP, double uniform) {
  // NaN logits rank as -inf so the ordering below is a strict weak order.
  std::vector<float> z(logits, logits + n);
  for (float& v : z)
    if (std::isnan(v)) v = -std::numeric_limits<float>::infinity();
  auto before = [&](int32_t a, int32_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); };
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  // Candidates are order[0, limit). Only the prefix that the cumulative walks below reach is
  // ever sorted, grown by doubling: peaked distributions over a large vocabulary stop after a
  // few dozen tokens instead of sorting all of them.
  const size_t limit = topK > 0 ? std::min<size_t>(static_cast<size_t>(topK), n) : n;
  size_t sortedEnd = 0;
  if (limit <= 4096 && limit < n) {
    // A small top-k: one bounded-heap pass over the logits, cheaper than a selection.
    std::partial_sort(order.begin(), order.begin() + limit, order.end(), before);
    sortedEnd = limit;
  } else if (n > 4096) {
    // A large vocabulary without a small top-k: sorting it all by radix beats any comparison
    // sort of the prefix a flat distribution's draw walks into.
    sortIdsByDescendingLogit(z, order);
    sortedEnd = limit;
  } else if (limit < n) {
    std::nth_element(order.begin(), order.begin() + (limit - 1), order.end(), before);
  }
  auto sortedUpTo = [&](size_t i) {  // makes order[0..i] sorted
    if (i < sortedEnd || sortedEnd == limit) return;
    const size_t upTo = std::min(limit, std::max<size_t>({64, 2 * sortedEnd, i + 1}));
    if (upTo < limit)
      std::nth_element(order.begin() + sortedEnd, order.begin() + (upTo - 1), order.begin() + limit, before);
    std::sort(order.begin() + sortedEnd, order.begin() + upTo, before);
    sortedEnd = upTo;
  };
  sortedUpTo(0);
  const double top = z[order[0]];
  if (!std::isfinite(top)) return order[0];
  auto weight = [&](int32_t id) { return std::exp((static_cast<double>(z[id]) - top) / temperature); };
  // Once the whole candidate list is sorted, each weight is computed once, not once per walk.
  std::vector<double> sortedWeights;
  if (sortedEnd == limit) {
    sortedWeights.resize(limit);
    for (size_t i = 0; i < limit; i++) sortedWeights[i] = weight(order[i]);
  }
  auto weightAt = [&](size_t i) { return sortedWeights.empty() ? weight(order[i]) : sortedWeights[i]; };

  double sum = 0;
  for (size_t i = 0; i < limit; i++) sum += weightAt(i);
  // Top-p keeps the shortest prefix whose probability reaches topP (always at least one).
  size_t kept = limit;
  double total = sum;
  if (topP < 1) {
    double cumulative = 0;
    for (size_t i = 0; i < limit; i++) {
      sortedUpTo(i);
      cumulative += weightAt(i);
      if (cumulative >= topP * sum) {
        kept = i + 1;
        total = cumulative;
        break;
      }
    }
  }
  const double target = uniform * total;
  double cumulative = 0;
  for (size_t i = 0; i < kept; i++) {
    sortedUpTo(i);
    cumulative += weightAt(i);
    if (cumulative > target) return order[i];
  }
  sortedUpTo(kept - 1);
  return order[kept - 1];
}

void f32ToBf16(const float* src, uint16_t* dst, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint32_t bits;
    std::memcpy(&bits, &src[i], 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u) {
      dst[i] = static_cast<uint16_t>((bits >> 16) | 0x40);  // keep NaN a (quiet) NaN
      continue;
    }
    // Round to nearest, ties to even: add 0x7fff plus the lowest kept bit, then truncate.
    bits += 0x7fffu + ((bits >> 16) & 1u);
    dst[i] = static_cast<uint16_t>(bits >> 16);
  }
}

void f32ToF16(const float* src, uint16_t* dst, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
  }
  for (; i < n; i++) dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

}  // namespace seesaw
