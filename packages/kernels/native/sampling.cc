#include "sampling.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

namespace seesaw {

void argmaxRows(int32_t* result, const float* logits, size_t rows, size_t n) {
  for (size_t r = 0; r < rows; r++) {
    const float* row = logits + r * n;
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
    result[r] = static_cast<int32_t>(best);
  }
}

namespace {

// Sorts ids 0..n-1 into the sampler's order (descending logit, ties by lower id) with an LSD
// radix sort on the logits' bits: four 8-bit passes, each stable, so equal logits keep id order.
// A full vocabulary (32k) sorts in a fraction of a millisecond, where a comparison sort of ids
// took several: the sampler ran at that cost for every row of every step without top-k.
// z holds no NaN (the caller ranks NaN as -inf); -0 and +0 are one key, as they compare equal.
void sortIdsByDescendingLogit(const std::vector<float>& z, std::vector<int32_t>& order) {
  const size_t n = z.size();
  std::vector<uint32_t> keys(n), keysTmp(n);
  std::vector<int32_t> idsTmp(n);
  for (size_t i = 0; i < n; i++) {
    const float v = z[i] == 0.0f ? 0.0f : z[i];
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    // Ascending float order as unsigned order, then inverted for descending.
    const uint32_t ascending = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
    keys[i] = ~ascending;
    order[i] = static_cast<int32_t>(i);
  }
  for (int shift = 0; shift < 32; shift += 8) {
    size_t count[257] = {0};
    for (size_t i = 0; i < n; i++) count[((keys[i] >> shift) & 0xffu) + 1]++;
    for (int b = 0; b < 256; b++) count[b + 1] += count[b];
    for (size_t i = 0; i < n; i++) {
      const size_t dst = count[(keys[i] >> shift) & 0xffu]++;
      keysTmp[dst] = keys[i];
      idsTmp[dst] = order[i];
    }
    keys.swap(keysTmp);
    order.swap(idsTmp);
  }
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
