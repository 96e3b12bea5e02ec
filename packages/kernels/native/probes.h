#pragma once
#include <cstddef>

namespace seesaw {

// Register-only FMA loop on every pool thread; returns GFLOP/s over all threads.
// FMA GFLOP/s of the current thread count on 8-lane (AVX2) or 16-lane (AVX-512) registers;
// lanes == 16 only where the CPU has AVX-512.
double measureFmaPeak(size_t iterations, int lanes);
// Sums the buffer, split over the pool; returns the elapsed seconds (sum written to *checksum).
double measureReadSeconds(const float* data, size_t n, double* checksum);

}  // namespace seesaw
