// Machine probes for the benchmark: the ceilings the kernels are judged against.
#include "probes.h"

#include <immintrin.h>

#include <chrono>
#include <vector>

#include "simd.h"
#include "thread_pool.h"

namespace seesaw {
namespace {

double seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Ten independent FMA chains hide the FMA latency on two pipes; the result is consumed so
// the loop cannot be removed.
float fmaLoop(size_t iterations, float seed) {
  __m256 a0 = _mm256_set1_ps(seed), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0,
         a9 = a0;
  const __m256 mul = _mm256_set1_ps(0.999999f), add = _mm256_set1_ps(1e-7f);
  for (size_t i = 0; i < iterations; i++) {
    a0 = _mm256_fmadd_ps(a0, mul, add);
    a1 = _mm256_fmadd_ps(a1, mul, add);
    a2 = _mm256_fmadd_ps(a2, mul, add);
    a3 = _mm256_fmadd_ps(a3, mul, add);
    a4 = _mm256_fmadd_ps(a4, mul, add);
    a5 = _mm256_fmadd_ps(a5, mul, add);
    a6 = _mm256_fmadd_ps(a6, mul, add);
    a7 = _mm256_fmadd_ps(a7, mul, add);
    a8 = _mm256_fmadd_ps(a8, mul, add);
    a9 = _mm256_fmadd_ps(a9, mul, add);
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  return hsum(_mm256_add_ps(s, _mm256_add_ps(a8, a9)));
}

// The same ten chains on 16-lane registers, for CPUs with AVX-512 (the matmul's wide path).
__attribute__((target("avx512f"))) float fmaLoop512(size_t iterations, float seed) {
  __m512 a[10];
  for (int j = 0; j < 10; j++) a[j] = _mm512_set1_ps(seed + 0.01f * j);
  const __m512 mul = _mm512_set1_ps(0.999999f), add = _mm512_set1_ps(1e-7f);
  for (size_t i = 0; i < iterations; i++) {
#pragma GCC unroll 10
    for (int j = 0; j < 10; j++) a[j] = _mm512_fmadd_ps(a[j], mul, add);
  }
  __m512 s = a[0];
  for (int j = 1; j < 10; j++) s = _mm512_add_ps(s, a[j]);
  // Summed through memory: GCC 12's _mm512_reduce_add_ps warns about its own undefined lanes.
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  float sum = 0;
  for (float lane : lanes) sum += lane;
  return sum;
}

}  // namespace

double measureFmaPeak(size_t iterations, int lanes) {
  std::vector<float> sink(currentThreadCount());
  double start = seconds();
  parallelRun([&](int tid, int) {
    sink[tid] = lanes == 16 ? fmaLoop512(iterations, 1.0f + tid) : fmaLoop(iterations, 1.0f + tid);
  });
  double elapsed = seconds() - start;
  volatile float keep = sink[0];
  (void)keep;
  return 2.0 * lanes * 10 * static_cast<double>(iterations) * currentThreadCount() / elapsed / 1e9;
}

double measureReadSeconds(const float* data, size_t n, double* checksum) {
  const int threads = currentThreadCount();
  std::vector<double> partial(threads);
  double start = seconds();
  parallelRun([&](int tid, int nt) {
    size_t per = (n / nt) & ~size_t(31);
    size_t b = tid * per, e = tid == nt - 1 ? n : b + per;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = b;
    for (; i + 32 <= e; i += 32) {
      s0 = _mm256_add_ps(s0, _mm256_loadu_ps(data + i));
      s1 = _mm256_add_ps(s1, _mm256_loadu_ps(data + i + 8));
      s2 = _mm256_add_ps(s2, _mm256_loadu_ps(data + i + 16));
      s3 = _mm256_add_ps(s3, _mm256_loadu_ps(data + i + 24));
    }
    double s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < e; i++) s += data[i];
    partial[tid] = s;
  });
  double elapsed = seconds() - start;
  double total = 0;
  for (double p : partial) total += p;
  *checksum = total;
  return elapsed;
}

}  // namespace seesaw
