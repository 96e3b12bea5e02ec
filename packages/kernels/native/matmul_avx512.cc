// The canonical matrix product on AVX-512 (chosen at run time where the CPU has it): 16-lane
// accumulators in zmm registers, four times the tile of the AVX2 path. Same bits as
// matmul_avx2.cc. The target pragma covers only this file; nothing here has external linkage
// except the entry point, so no AVX-512 code can be reached on a CPU without it.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq")
// GCC 12 warns on its own intrinsics headers here (a known false positive in _mm512 casts).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "matmul_canonical.h"
#include "matmul_lanes512.h"
#include "matmul_paths.h"

namespace seesaw {

void matmulAvx512(float* out, const float* x, size_t m, const void* w, DType dtype, size_t n, size_t k,
                  size_t leaves, const float* bias) {
  canonicalMatmulAnyType<Lanes512>(Problem{x, m, n, k, leaves, out, bias}, w, dtype);
}

}  // namespace seesaw
