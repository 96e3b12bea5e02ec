#pragma once
#include <cstddef>

namespace seesaw {

// Register-only FMA loop on every pool thread; returns GFLOP/s over all threads.
double measureFmaPeak(size_t iterations);
// Sums the buffer, split over the pool; returns the elapsed seconds (sum written to *checksum).
double measureReadSeconds(const float* data, size_t n, double* checksum);

}  // namespace seesaw
