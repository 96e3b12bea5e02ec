// Packed Q8_0 / Q4_0 weights (layout in quant_packed.h): packing, unpacking, the scalar tile
// kernel (the SIMD ones are in quant_packed_x86.cc) and the matmul driver. Every path computes
// the same exact block dot products and the same f32 partials, combined by one tree
// (quant_rows.cc), so the bits never depend on the path, the batch or the threads.
#include "quant_packed.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "quant_internal.h"
#include "thread_pool.h"
#include "touch.h"

namespace seesaw {
namespace {

// Code of row c at element i of a block record (see the layout).
int32_t recordCode(QuantType type, const uint8_t* rec, size_t c, size_t i) {
  if (type == QuantType::Q8_0) return static_cast<int8_t>(rec[((i / 4) * kPackedTileRows + c) * 4 + i % 4]);
  const size_t g = (i % 16) / 4;
  const uint8_t byte = rec[(g * kPackedTileRows + c) * 4 + i % 4];
  return i < 16 ? int32_t(byte & 0x0f) - 8 : int32_t(byte >> 4) - 8;
}

float recordScale(QuantType type, const uint8_t* rec, size_t c) {
  return halfToFloat(rec + packedCodeBytes(type) + 2 * c);
}

void partialsScalar(QuantType type, float* partial, const uint8_t* tile, size_t nb, const QuantizedRows& x,
                    size_t rows) {
  const size_t record = packedRecordBytes(type);
  for (size_t r = 0; r < rows; r++) {
    for (size_t b = 0; b < nb; b++) {
      const uint8_t* rec = tile + b * record;
      const int8_t* xb = x.q + r * x.k + b * kQuantBlock;
      for (size_t c = 0; c < kPackedTileRows; c++) {
        int32_t isum = 0;
        for (size_t i = 0; i < kQuantBlock; i++) isum += recordCode(type, rec, c, i) * xb[i];
        const float scale = recordScale(type, rec, c) * x.d[r * (x.k / kQuantBlock) + b];
        partial[(r * nb + b) * kPackedTileRows + c] = scale * static_cast<float>(isum);
      }
    }
  }
}

template <QuantType kType>
void tileScalar(float* out, size_t outStride, size_t count, float* partial, const uint8_t* tile, size_t nb,
                const QuantizedRows& x, size_t rows) {
  partialsScalar(kType, partial, tile, nb, x, rows);
  for (size_t r = 0; r < rows; r++) halvingTree16(out + r * outStride, count, partial + r * nb * kPackedTileRows, nb);
}

size_t tileCount(size_t n) { return (n + kPackedTileRows - 1) / kPackedTileRows; }

}  // namespace

size_t packedTileBytes(QuantType type, size_t k) { return (k / kQuantBlock) * packedRecordBytes(type); }
size_t packedWeightBytes(QuantType type, size_t n, size_t k) { return tileCount(n) * packedTileBytes(type, k); }

PackedTileKernel packedTileKernelFor(QuantType type, QuantPath path) {
  if (path == QuantPath::Scalar) return type == QuantType::Q8_0 ? tileScalar<QuantType::Q8_0> : tileScalar<QuantType::Q4_0>;
  return x86PackedTileKernel(type, path);
}

void packQuantWeight(QuantType type, const uint8_t* w, size_t n, size_t k, uint8_t* packed) {
  const size_t nb = k / kQuantBlock;
  const size_t blockBytes = quantBlockBytes(type);
  const size_t record = packedRecordBytes(type);
  const size_t codeBytes = packedCodeBytes(type);
  std::memset(packed, 0, packedWeightBytes(type, n, k));
  parallelFor(tileCount(n), [&](size_t tile, int) {
    uint8_t* base = packed + tile * packedTileBytes(type, k);
    for (size_t c = 0; c < kPackedTileRows && tile * kPackedTileRows + c < n; c++) {
      const uint8_t* row = w + (tile * kPackedTileRows + c) * nb * blockBytes;
      for (size_t b = 0; b < nb; b++) {
        const uint8_t* block = row + b * blockBytes;
        uint8_t* rec = base + b * record;
        std::memcpy(rec + codeBytes + 2 * c, block, 2);
        const size_t groups = codeBytes / 64;
        for (size_t g = 0; g < groups; g++) std::memcpy(rec + (g * kPackedTileRows + c) * 4, block + 2 + 4 * g, 4);
        if (type == QuantType::Q8_0) {
          int16_t sum = 0;  // |sum| <= 32 * 127 fits int16
          for (size_t i = 0; i < kQuantBlock; i++) sum = static_cast<int16_t>(sum + static_cast<int8_t>(block[2 + i]));
          std::memcpy(rec + codeBytes + 32 + 2 * c, &sum, 2);
        }
      }
    }
  });
}

void unpackQuantWeight(QuantType type, const uint8_t* packed, size_t n, size_t k, uint8_t* w) {
  const size_t nb = k / kQuantBlock;
  const size_t blockBytes = quantBlockBytes(type);
  const size_t record = packedRecordBytes(type);
  const size_t codeBytes = packedCodeBytes(type);
  for (size_t r = 0; r < n; r++) {
    const uint8_t* base = packed + (r / kPackedTileRows) * packedTileBytes(type, k);
    const size_t c = r % kPackedTileRows;
    for (size_t b = 0; b < nb; b++) {
      uint8_t* block = w + (r * nb + b) * blockBytes;
      const uint8_t* rec = base + b * record;
      std::memcpy(block, rec + codeBytes + 2 * c, 2);
      for (size_t g = 0; g < codeBytes / 64; g++) std::memcpy(block + 2 + 4 * g, rec + (g * kPackedTileRows + c) * 4, 4);
    }
  }
}

void quantMatmulPacked(float* out, const float* x, size_t m, QuantType type, const uint8_t* packed, size_t n,
                       size_t k, QuantPath path) {
  const size_t nb = k / kQuantBlock;
  if (nb == 0) {
    std::fill(out, out + m * n, 0.0f);
    return;
  }
  std::vector<int8_t> xq(m * k);
  std::vector<uint8_t> biased(type == QuantType::Q8_0 ? m * k : 0);
  std::vector<float> xd(m * nb);
  std::vector<int32_t> xs(m * nb);
  parallelFor(m, [&](size_t r, int) {
    quantizeRow(x + r * k, k, xq.data() + r * k, xd.data() + r * nb, xs.data() + r * nb);
    if (!biased.empty())
      for (size_t i = 0; i < k; i++) biased[r * k + i] = static_cast<uint8_t>(xq[r * k + i] ^ 0x80);
  });
  PackedTileKernel tileKernel = packedTileKernelFor(type, path);
  // Work items: a run of tiles x a run of rows, big enough that neighbouring items never write
  // the same cache line of `out` and the item counter is not contended, small enough to balance.
  const size_t tiles = tileCount(n);
  const size_t threads = static_cast<size_t>(currentThreadCount());
  const size_t tilesPerItem = std::clamp<size_t>(tiles / (8 * threads), 1, 16);
  const size_t rowsPerItem = 64;
  const size_t tileItems = (tiles + tilesPerItem - 1) / tilesPerItem;
  const size_t rowItems = (m + rowsPerItem - 1) / rowsPerItem;
  const size_t tileBytes = packedTileBytes(type, k);
  parallelFor(tileItems * rowItems, [&](size_t item, int) {
    thread_local std::vector<float> partial;
    partial.resize(kPackedRowBlock * nb * kPackedTileRows);
    const size_t rowBegin = (item / tileItems) * rowsPerItem;
    const size_t rowEnd = std::min(m, rowBegin + rowsPerItem);
    const size_t tileBegin = (item % tileItems) * tilesPerItem;
    const size_t tileEnd = std::min(tiles, tileBegin + tilesPerItem);
    for (size_t tile = tileBegin; tile < tileEnd; tile++) {
      const size_t first = tile * kPackedTileRows;
      const size_t count = std::min(kPackedTileRows, n - first);
      // With several row blocks, one streaming read of the tile before them (touch.h): 8 rows of
      // DRAM-resident Q8_0 ran at 143 GFLOP/s on one core without it, 271 with the tile in cache.
      // A single row block reads the tile once anyway, and ran slower with the extra read.
      if (rowEnd - rowBegin > kPackedRowBlock) touchBytes(packed + tile * tileBytes, tileBytes);
      for (size_t r = rowBegin; r < rowEnd; r += kPackedRowBlock) {
        const size_t rows = std::min(kPackedRowBlock, rowEnd - r);
        const QuantizedRows xr{xq.data() + r * k, biased.empty() ? nullptr : biased.data() + r * k,
                               xd.data() + r * nb, xs.data() + r * nb, k};
        tileKernel(out + r * n + first, n, count, partial.data(), packed + tile * tileBytes, nb, xr, rows);
      }
    }
  });
}

}  // namespace seesaw
