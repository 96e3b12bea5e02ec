// Quantized matmul on ggml blocks: threading, tiles and the choice of instruction-set path. The
// SIMD paths (quant_dot_x86.cc) only compute exact int32 block dot products and the f32 rounding
// happens in one place for every path (quant_rows.cc), so every path gives the same bits.
//
// Reduction order (the canonical contract, docs/determinism.md; chunk = one 32-element block):
//   p[b] = f32(d_w[b] * d_x[b]) * f32(isum[b])      (two f32 roundings, in that order)
//   y    = halving tree over p[0 .. k/32)           (tree(lo,hi) = tree(lo,mid) + tree(mid,hi),
//                                                     mid = lo + (hi-lo)/2)
// Activations: per block d_x = amax/127 (f32), q = roundf(x * (1/d_x)) as ggml's Q8_0. Both
// depend only on the row itself, so outputs never depend on the batch, neighbours or threads.
#include "quant_matmul.h"

#include <immintrin.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <vector>

#include "quant_internal.h"
#include "thread_pool.h"

namespace seesaw {

QuantBlockDots x86QuantBlockDots(QuantType type, QuantPath path);
QuantTileDots x86QuantTileDots(QuantType type, QuantPath path);

namespace {

constexpr size_t kUnpackFromRows = 4;

void q8DotsScalar(int32_t* isums, const uint8_t* const* wrows, const int8_t* xq, const int32_t*,
                  size_t nblocks) {
  for (size_t b = 0; b < nblocks; b++) {
    for (size_t c = 0; c < kQuantTileRows; c++) {
      const int8_t* w = reinterpret_cast<const int8_t*>(wrows[c] + b * 34 + 2);
      int32_t s = 0;
      for (size_t i = 0; i < kQuantBlock; i++) s += int32_t(w[i]) * xq[b * kQuantBlock + i];
      isums[b * kQuantTileRows + c] = s;
    }
  }
}

void q4DotsScalar(int32_t* isums, const uint8_t* const* wrows, const int8_t* xq, const int32_t*,
                  size_t nblocks) {
  for (size_t b = 0; b < nblocks; b++) {
    const int8_t* x = xq + b * kQuantBlock;
    for (size_t c = 0; c < kQuantTileRows; c++) {
      const uint8_t* w = wrows[c] + b * 18 + 2;
      int32_t s = 0;
      for (size_t i = 0; i < 16; i++)
        s += (int32_t(w[i] & 0x0f) - 8) * x[i] + (int32_t(w[i] >> 4) - 8) * x[i + 16];
      isums[b * kQuantTileRows + c] = s;
    }
  }
}

// Code of row c at k = 4g + i of block b in a tile (see unpackTile / packQuantWeight).
inline int32_t tileCode(const int8_t* codes, size_t stride, size_t b, size_t c, size_t k) {
  return codes[b * stride + (k / 4) * kQuantTileRows * 4 + c * 4 + k % 4];
}

void q8TileScalar(int32_t* isums, const int8_t* codes, const int32_t*, size_t stride, const int8_t* xq,
                  const int32_t*, size_t nblocks) {
  for (size_t b = 0; b < nblocks; b++) {
    for (size_t c = 0; c < kQuantTileRows; c++) {
      int32_t s = 0;
      for (size_t k = 0; k < kQuantBlock; k++) s += tileCode(codes, stride, b, c, k) * xq[b * kQuantBlock + k];
      isums[b * kQuantTileRows + c] = s;
    }
  }
}

void q4TileScalar(int32_t* isums, const int8_t* codes, const int32_t*, size_t stride, const int8_t* xq,
                  const int32_t* xsums, size_t nblocks) {
  for (size_t b = 0; b < nblocks; b++) {
    for (size_t c = 0; c < kQuantTileRows; c++) {
      int32_t s = 0;
      for (size_t k = 0; k < kQuantBlock; k++) s += tileCode(codes, stride, b, c, k) * xq[b * kQuantBlock + k];
      isums[b * kQuantTileRows + c] = s - 8 * xsums[b];
    }
  }
}

// Records of kUnpackedStride bytes a block: codes [g][c][4] (group g = codes 4g..4g+3 of row c;
// Q8_0 codes, Q4_0 nibbles 0..15), then (Q8_0) the 8 rows' code sums.
constexpr size_t kUnpackedStride = 256 + kQuantTileRows * 4;

void unpackTile(QuantType type, const uint8_t* const* wrows, size_t nb, int8_t* codes) {
  const size_t blockBytes = quantBlockBytes(type);
  for (size_t b = 0; b < nb; b++) {
    for (size_t c = 0; c < kQuantTileRows; c++) {
      const uint8_t* src = wrows[c] + b * blockBytes + 2;
      int8_t values[kQuantBlock];
      if (type == QuantType::Q8_0) {
        std::memcpy(values, src, kQuantBlock);
        int32_t sum = 0;
        for (size_t i = 0; i < kQuantBlock; i++) sum += values[i];
        std::memcpy(codes + b * kUnpackedStride + 256 + c * 4, &sum, 4);
      } else {
        for (size_t i = 0; i < 16; i++) {
          values[i] = static_cast<int8_t>(src[i] & 0x0f);
          values[i + 16] = static_cast<int8_t>(src[i] >> 4);
        }
      }
      for (size_t g = 0; g < kQuantBlock / 4; g++) {
        std::memcpy(codes + b * kUnpackedStride + (g * kQuantTileRows + c) * 4, values + 4 * g, 4);
      }
    }
  }
}

QuantPath pathFromEnv() {
  const char* env = std::getenv("SEESAW_QUANT_KERNEL");
  if (env == nullptr || *env == 0) return QuantPath::Scalar;
  for (int p = 0; p < kNumQuantPaths; p++) {
    if (std::strcmp(env, quantPathName(static_cast<QuantPath>(p))) == 0) return static_cast<QuantPath>(p);
  }
  return QuantPath::Scalar;
}

}  // namespace

size_t quantBlockBytes(QuantType type) { return type == QuantType::Q8_0 ? 34 : 18; }

const char* quantPathName(QuantPath path) {
  switch (path) {
    case QuantPath::Avx2:
      return "avx2";
    case QuantPath::AvxVnni:
      return "avxvnni";
    case QuantPath::Avx512Vnni:
      return "avx512vnni";
    default:
      return "scalar";
  }
}

bool quantPathSupported(QuantPath path) {
  __builtin_cpu_init();
  switch (path) {
    case QuantPath::Scalar:
      return true;
    case QuantPath::Avx2:
      return __builtin_cpu_supports("avx2");
    case QuantPath::AvxVnni:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avxvnni");
    case QuantPath::Avx512Vnni:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

QuantPath defaultQuantPath() {
  static const QuantPath chosen = [] {
    const char* env = std::getenv("SEESAW_QUANT_KERNEL");
    if (env != nullptr && *env != 0) {
      QuantPath forced = pathFromEnv();
      if (quantPathSupported(forced) && std::strcmp(env, quantPathName(forced)) == 0) return forced;
    }
    for (QuantPath p : {QuantPath::Avx512Vnni, QuantPath::AvxVnni, QuantPath::Avx2}) {
      if (quantPathSupported(p)) return p;
    }
    return QuantPath::Scalar;
  }();
  return chosen;
}

QuantTileDots quantTileDotsFor(QuantType type, QuantPath path) {
  if (path == QuantPath::Scalar) return type == QuantType::Q8_0 ? q8TileScalar : q4TileScalar;
  return x86QuantTileDots(type, path);
}

QuantBlockDots quantBlockDotsFor(QuantType type, QuantPath path) {
  if (path == QuantPath::Scalar) return type == QuantType::Q8_0 ? q8DotsScalar : q4DotsScalar;
  return x86QuantBlockDots(type, path);
}

void quantMatmul(float* out, const float* x, size_t m, QuantType type, const uint8_t* w, size_t n, size_t k,
                 QuantPath path) {
  const size_t nb = k / kQuantBlock;
  const size_t blockBytes = quantBlockBytes(type);
  const size_t rowBytes = nb * blockBytes;
  if (nb == 0) {
    std::fill(out, out + m * n, 0.0f);
    return;
  }
  std::vector<int8_t> xq(m * k);
  std::vector<float> xd(m * nb);
  std::vector<int32_t> xs(m * nb);
  for (size_t r = 0; r < m; r++) quantizeRow(x + r * k, k, xq.data() + r * k, xd.data() + r * nb, xs.data() + r * nb);
  QuantBlockDots dots = quantBlockDotsFor(type, path);
  QuantTileDots tileDots = quantTileDotsFor(type, path);
  // From this many rows on, unpacking a tile once beats reading its blocks per row.
  const bool unpack = m >= kUnpackFromRows;
  const size_t tiles = (n + kQuantTileRows - 1) / kQuantTileRows;
  parallelFor(tiles, [&](size_t tile, int) {
    thread_local std::vector<int32_t> isums;
    thread_local std::vector<int8_t> codes;
    thread_local std::vector<float> dw;  // [nb][8] weight scales of the tile's rows
    thread_local std::vector<float> partial;  // [nb][8] block partials of one activation row
    isums.resize(nb * kQuantTileRows);
    dw.resize(nb * kQuantTileRows);
    partial.resize(nb * kQuantTileRows);
    // A partial tile repeats its last row; those lanes are computed and dropped.
    const size_t first = tile * kQuantTileRows;
    const size_t count = std::min(kQuantTileRows, n - first);
    const uint8_t* wrows[kQuantTileRows];
    for (size_t c = 0; c < kQuantTileRows; c++) wrows[c] = w + (first + std::min(c, count - 1)) * rowBytes;
    for (size_t b = 0; b < nb; b++) {
      for (size_t c = 0; c < kQuantTileRows; c++) dw[b * kQuantTileRows + c] = halfToFloat(wrows[c] + b * blockBytes);
    }
    if (unpack) {
      codes.resize(nb * kUnpackedStride);
      unpackTile(type, wrows, nb, codes.data());
    }
    for (size_t r = 0; r < m; r++) {
      if (unpack) {
        tileDots(isums.data(), codes.data(), reinterpret_cast<const int32_t*>(codes.data() + 256), kUnpackedStride,
                 xq.data() + r * k, xs.data() + r * nb, nb);
      }
      else dots(isums.data(), wrows, xq.data() + r * k, xs.data() + r * nb, nb);
      combineRow(out + r * n + first, count, dw.data(), kQuantTileRows, xd.data() + r * nb, isums.data(),
                 partial.data(), nb);
    }
  });
}

}  // namespace seesaw
