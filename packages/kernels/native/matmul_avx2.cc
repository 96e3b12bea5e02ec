// The canonical matrix product on AVX2/FMA (the addon's baseline ISA): 16-lane accumulators as
// ymm pairs. Same bits as matmul_avx512.cc.
#include "matmul_canonical.h"
#include "matmul_paths.h"

namespace seesaw {

void matmulAvx2(float* out, const float* x, size_t m, const void* w, DType dtype, size_t n, size_t k, size_t leaves,
                const float* bias) {
  canonicalMatmulAnyType<Lanes256>(Problem{x, m, n, k, leaves, out, bias}, w, dtype);
}

}  // namespace seesaw
