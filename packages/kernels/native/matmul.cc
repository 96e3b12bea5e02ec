// Matrix product against a weight stored [N][K] (the nn.Linear layout), in the dot-product form,
// computed in ONE canonical order for every output (docs/determinism.md; the expression is
// spelled out in matmul_canonical.h): whatever the number of rows, the tile an output lands in,
// the thread split or the instruction set, a row's bits depend only on that row and the weight.
// The instruction set is chosen once at run time (AVX-512 where the CPU has it, else AVX2);
// SEESAW_MATMUL_KERNEL=avx2|avx512 forces one (tests compare the two bit for bit).
#include "matmul.h"

#include <cstdlib>
#include <initializer_list>
#include <cstring>

#include "matmul_paths.h"

namespace seesaw {

bool matmulPathSupported(MatmulPath path) {
  __builtin_cpu_init();
  if (path == MatmulPath::Avx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

const char* matmulPathName(MatmulPath path) { return path == MatmulPath::Avx512 ? "avx512" : "avx2"; }

MatmulPath defaultMatmulPath() {
  static const MatmulPath chosen = [] {
    const char* forced = std::getenv("SEESAW_MATMUL_KERNEL");
    for (MatmulPath p : {MatmulPath::Avx512, MatmulPath::Avx2}) {
      if (forced != nullptr && *forced != 0 && std::strcmp(forced, matmulPathName(p)) == 0 && matmulPathSupported(p))
        return p;
    }
    return matmulPathSupported(MatmulPath::Avx512) ? MatmulPath::Avx512 : MatmulPath::Avx2;
  }();
  return chosen;
}

void matmul(float* out, const float* x, size_t m, const void* w, DType dtype, size_t n, size_t k, size_t leaves,
            const float* bias, MatmulPath path) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (size_t r = 0; r < m; r++)
      for (size_t j = 0; j < n; j++) out[r * n + j] = bias ? bias[j] : 0.0f;
    return;
  }
  if (path == MatmulPath::Avx512) {
    matmulAvx512(out, x, m, w, dtype, n, k, leaves, bias);
  } else {
    matmulAvx2(out, x, m, w, dtype, n, k, leaves, bias);
  }
}

}  // namespace seesaw
