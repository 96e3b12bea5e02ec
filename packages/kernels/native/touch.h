// touchBytes: reads a byte range in order, 128 bytes a round, so a later compute pass finds it in
// cache. Kernels whose first pass over a stretch of memory interleaves its misses with
// arithmetic (a weight block before its row tiles, a K/V block before its scores) hide those
// misses badly on this machine; one plain streaming read first lets the hardware prefetcher run
// ahead. Only a hint: no result depends on it.
#pragma once
#include <immintrin.h>

#include <cstddef>

namespace seesaw {
// Internal linkage: this header is compiled under different target ISAs (matmul_avx2.cc,
// matmul_avx512.cc), and the linker must never give one path the other's copy.
namespace {

inline void touchBytes(const void* begin, size_t bytes) {
  const char* p = static_cast<const char*>(begin);
  __m256 a = _mm256_setzero_ps(), b = a, c = a, d = a;
  for (size_t i = 0; i + 128 <= bytes; i += 128) {
    a = _mm256_or_ps(a, _mm256_loadu_ps(reinterpret_cast<const float*>(p + i)));
    b = _mm256_or_ps(b, _mm256_loadu_ps(reinterpret_cast<const float*>(p + i + 32)));
    c = _mm256_or_ps(c, _mm256_loadu_ps(reinterpret_cast<const float*>(p + i + 64)));
    d = _mm256_or_ps(d, _mm256_loadu_ps(reinterpret_cast<const float*>(p + i + 96)));
  }
  // The loads feed a sink the compiler cannot drop.
  __m256 all = _mm256_or_ps(_mm256_or_ps(a, b), _mm256_or_ps(c, d));
  __asm__ volatile("" : : "x"(all));
}

}  // namespace
}  // namespace seesaw
