// Packed Q8_0 / Q4_0 weights (see quant_matmul.h): the layout, packing and unpacking, and the
// matmul that runs the tile dot products straight from it.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "quant_internal.h"
#include "quant_matmul.h"
#include "thread_pool.h"

namespace seesaw {

QuantTileDots x86PackedQ4Dots(QuantPath path);

namespace {

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
