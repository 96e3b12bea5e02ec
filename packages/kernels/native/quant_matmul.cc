// Quantized matmul driver: activation quantization, the per-output reduction, threading and the
// choice of instruction-set path. The SIMD paths (quant_dot_x86.cc) only compute exact int32
// block dot products, so every path gives the same bits.
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

#include "thread_pool.h"

namespace seesaw {

QuantBlockDots x86QuantBlockDots(QuantType type, QuantPath path);
QuantTileDots x86QuantTileDots(QuantType type, QuantPath path);
QuantTileDots x86PackedQ4Dots(QuantPath path);

namespace {

constexpr size_t kUnpackFromRows = 4;

float halfToFloat(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return _cvtsh_ss(bits);
}

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

// The halving tree over block partials, 8 output columns per lane (each lane's order is the
// scalar tree's: lane-wise IEEE adds).
// p holds 8 floats a block. Sizes up to 4 are written out (the tree's shape for them:
// 3 = p0 + (p1 + p2), 4 = (p0 + p1) + (p2 + p3)) to keep calls off the leaves.
__m256 halvingTree(const float* p, size_t lo, size_t hi) {
  auto at = [p](size_t i) { return _mm256_loadu_ps(p + i * 8); };
  switch (hi - lo) {
    case 1:
      return at(lo);
    case 2:
      return _mm256_add_ps(at(lo), at(lo + 1));
    case 3:
      return _mm256_add_ps(at(lo), _mm256_add_ps(at(lo + 1), at(lo + 2)));
    case 4:
      return _mm256_add_ps(_mm256_add_ps(at(lo), at(lo + 1)), _mm256_add_ps(at(lo + 2), at(lo + 3)));
    default: {
      size_t mid = lo + (hi - lo) / 2;
      return _mm256_add_ps(halvingTree(p, lo, mid), halvingTree(p, mid, hi));
    }
  }
}

void q4PackedScalar(int32_t* isums, const int8_t* codes, const int32_t*, size_t stride, const int8_t* xq,
                    const int32_t* xsums, size_t nblocks) {
  for (size_t b = 0; b < nblocks; b++) {
    for (size_t c = 0; c < kQuantTileRows; c++) {
      int32_t s = 0;
      for (size_t g = 0; g < 4; g++) {
        for (size_t i = 0; i < 4; i++) {
          uint8_t byte = static_cast<uint8_t>(codes[b * stride + (g * kQuantTileRows + c) * 4 + i]);
          s += int32_t(byte & 0x0f) * xq[b * kQuantBlock + 4 * g + i];
          s += int32_t(byte >> 4) * xq[b * kQuantBlock + 16 + 4 * g + i];
        }
      }
      isums[b * kQuantTileRows + c] = s - 8 * xsums[b];
    }
  }
}

// One activation row's 8 outputs of a tile: p[b] = (d_w * d_x) * isum lane-wise, then the tree.
// dw: block b's 8 scales at dw + b * dwStride.
void combineRow(float* out, size_t count, const float* dw, size_t dwStride, const float* dx, const int32_t* isums,
                float* partial, size_t nb) {
  for (size_t b = 0; b < nb; b++) {
    __m256 scale = _mm256_mul_ps(_mm256_loadu_ps(dw + b * dwStride), _mm256_set1_ps(dx[b]));
    __m256i isum = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(isums + b * kQuantTileRows));
    _mm256_storeu_ps(partial + b * kQuantTileRows, _mm256_mul_ps(scale, _mm256_cvtepi32_ps(isum)));
  }
  alignas(32) float result[kQuantTileRows];
  _mm256_store_ps(result, halvingTree(partial, 0, nb));
  for (size_t c = 0; c < count; c++) out[c] = result[c];
}

// One activation row to int8 blocks: scales, codes and per-block code sums (for Q4_0's offset).
void quantizeRow(const float* x, size_t k, int8_t* q, float* d, int32_t* sums) {
  for (size_t b = 0; b < k / kQuantBlock; b++) {
    const float* xb = x + b * kQuantBlock;
    float amax = 0;
    for (size_t i = 0; i < kQuantBlock; i++) amax = std::fmax(amax, std::fabs(xb[i]));
    float db = amax / 127.0f;
    float id = db != 0 ? 1.0f / db : 0.0f;
    int32_t sum = 0;
    for (size_t i = 0; i < kQuantBlock; i++) {
      int v = static_cast<int>(std::roundf(xb[i] * id));
      q[b * kQuantBlock + i] = static_cast<int8_t>(v);
      sum += v;
    }
    d[b] = db;
    sums[b] = sum;
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

namespace {
size_t packedCodeBytes(QuantType type) { return type == QuantType::Q8_0 ? 256 : 128; }
// One block of a packed tile: codes, 8 f32 scales, (Q8_0) 8 int32 code sums.
size_t packedRecordBytes(QuantType type) {
  return packedCodeBytes(type) + kQuantTileRows * 4 + (type == QuantType::Q8_0 ? kQuantTileRows * 4 : 0);
}
}  // namespace

size_t packedTileBytes(QuantType type, size_t k) { return (k / kQuantBlock) * packedRecordBytes(type); }

void packQuantWeight(QuantType type, const uint8_t* w, size_t n, size_t k, uint8_t* packed) {
  const size_t nb = k / kQuantBlock;
  const size_t blockBytes = quantBlockBytes(type);
  const size_t rowBytes = nb * blockBytes;
  const size_t codeBytes = type == QuantType::Q8_0 ? 256 : 128;
  const size_t tiles = (n + kQuantTileRows - 1) / kQuantTileRows;
  std::memset(packed, 0, tiles * packedTileBytes(type, k));
  parallelFor(tiles, [&](size_t tile, int) {
    uint8_t* base = packed + tile * packedTileBytes(type, k);
    const size_t record = packedRecordBytes(type);
    for (size_t c = 0; c < kQuantTileRows && tile * kQuantTileRows + c < n; c++) {
      const uint8_t* row = w + (tile * kQuantTileRows + c) * rowBytes;
      for (size_t b = 0; b < nb; b++) {
        const uint8_t* block = row + b * blockBytes;
        uint8_t* rec = base + b * record;
        float scale = halfToFloat(block);
        std::memcpy(rec + codeBytes + c * 4, &scale, 4);
        const size_t groups = type == QuantType::Q8_0 ? 8 : 4;
        for (size_t g = 0; g < groups; g++) {
          std::memcpy(rec + (g * kQuantTileRows + c) * 4, block + 2 + 4 * g, 4);
        }
        if (type == QuantType::Q8_0) {
          int32_t sum = 0;
          for (size_t i = 0; i < kQuantBlock; i++) sum += static_cast<int8_t>(block[2 + i]);
          std::memcpy(rec + codeBytes + kQuantTileRows * 4 + c * 4, &sum, 4);
        }
      }
    }
  });
}

void unpackQuantWeight(QuantType type, const uint8_t* packed, size_t n, size_t k, uint8_t* w) {
  const size_t nb = k / kQuantBlock;
  const size_t blockBytes = quantBlockBytes(type);
  const size_t codeBytes = type == QuantType::Q8_0 ? 256 : 128;
  for (size_t r = 0; r < n; r++) {
    const uint8_t* base = packed + (r / kQuantTileRows) * packedTileBytes(type, k);
    const size_t record = packedRecordBytes(type);
    const size_t c = r % kQuantTileRows;
    for (size_t b = 0; b < nb; b++) {
      uint8_t* block = w + r * nb * blockBytes + b * blockBytes;
      const uint8_t* rec = base + b * record;
      float scale;
      std::memcpy(&scale, rec + codeBytes + c * 4, 4);
      // Scales were f16 values, so the f32 -> f16 conversion is exact.
      uint16_t bits = _cvtss_sh(scale, 0);
      std::memcpy(block, &bits, 2);
      const size_t groups = type == QuantType::Q8_0 ? 8 : 4;
      for (size_t g = 0; g < groups; g++) {
        std::memcpy(block + 2 + 4 * g, rec + (g * kQuantTileRows + c) * 4, 4);
      }
    }
  }
}

QuantTileDots quantPackedQ4DotsFor(QuantPath path) {
  return path == QuantPath::Scalar ? q4PackedScalar : x86PackedQ4Dots(path);
}

void quantMatmulPacked(float* out, const float* x, size_t m, QuantType type, const uint8_t* packed, size_t n,
                       size_t k, QuantPath path) {
  const size_t nb = k / kQuantBlock;
  if (nb == 0) {
    std::fill(out, out + m * n, 0.0f);
    return;
  }
  std::vector<int8_t> xq(m * k);
  std::vector<float> xd(m * nb);
  std::vector<int32_t> xs(m * nb);
  for (size_t r = 0; r < m; r++) quantizeRow(x + r * k, k, xq.data() + r * k, xd.data() + r * nb, xs.data() + r * nb);
  QuantTileDots tileDots = type == QuantType::Q8_0 ? quantTileDotsFor(type, path) : quantPackedQ4DotsFor(path);
  const size_t codeBytes = packedCodeBytes(type);
  const size_t record = packedRecordBytes(type);
  const size_t tiles = (n + kQuantTileRows - 1) / kQuantTileRows;
  parallelFor(tiles, [&](size_t tile, int) {
    thread_local std::vector<int32_t> isums;
    thread_local std::vector<float> partial;
    isums.resize(nb * kQuantTileRows);
    partial.resize(nb * kQuantTileRows);
    const uint8_t* base = packed + tile * packedTileBytes(type, k);
    const int8_t* codes = reinterpret_cast<const int8_t*>(base);
    const float* scales = reinterpret_cast<const float*>(base + codeBytes);
    const int32_t* sums = reinterpret_cast<const int32_t*>(base + codeBytes + kQuantTileRows * 4);
    const size_t first = tile * kQuantTileRows;
    const size_t count = std::min(kQuantTileRows, n - first);
    for (size_t r = 0; r < m; r++) {
      tileDots(isums.data(), codes, sums, record, xq.data() + r * k, xs.data() + r * nb, nb);
      combineRow(out + r * n + first, count, scales, record / 4, xd.data() + r * nb, isums.data(), partial.data(),
                 nb);
    }
  });
}

}  // namespace seesaw
