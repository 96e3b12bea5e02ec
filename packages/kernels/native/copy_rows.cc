// copyRows: a strided byte copy (numRows runs of runBytes, each row's start srcRowBytes /
// destRowBytes apart) in one call. Re-shards copy column slices of weight matrices row by row
// (a TP shard's half of every row); done from JS each row costs a typed-array view and a call,
// which holds such copies to ~3 GB/s against ~15 GB/s for memcpy here.
#include "copy_rows.h"

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "args.h"

namespace seesaw {

namespace {

// Copies of at least this many bytes in all (runs of at least kStreamMinRunBytes) write with
// non-temporal stores: a re-shard writes a new weight matrix it does not read again soon, and
// ordinary stores first read every destination line in (~1.5x the memory traffic of the copy).
constexpr size_t kStreamMinBytes = 256 << 10;
constexpr size_t kStreamMinRunBytes = 256;

// memcpy of non-overlapping ranges: the destination's first bytes up to a 32-byte boundary and
// its last partial 128 bytes by memcpy, the rest 128 bytes a round by streaming stores.
void streamCopy(uint8_t* to, const uint8_t* from, size_t bytes) {
  size_t head = (32 - (reinterpret_cast<uintptr_t>(to) & 31)) & 31;
  if (head > bytes) head = bytes;
  std::memcpy(to, from, head);
  size_t i = head;
  for (; i + 128 <= bytes; i += 128) {
    __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(from + i));
    __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(from + i + 32));
    __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(from + i + 64));
    __m256i d = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(from + i + 96));
    _mm256_stream_si256(reinterpret_cast<__m256i*>(to + i), a);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(to + i + 32), b);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(to + i + 64), c);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(to + i + 96), d);
  }
  std::memcpy(to + i, from + i, bytes - i);
}

Span<uint8_t> u8Arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return typedArg<uint8_t, napi_uint8_array>(info, i, name, "Uint8Array");
}

// The byte just past the last run, checked against the array's length.
void requireRows(Napi::Env env, const char* name, size_t length, size_t start, size_t rowBytes, size_t runBytes,
                 size_t numRows) {
  if (numRows == 0) return;
  size_t last = checkedMul(env, numRows - 1, rowBytes);
  size_t end = start + last + runBytes;
  if (end < start || end > length)
    throwRange(env, std::string(name) + " of " + std::to_string(length) + " bytes is too short for " +
                        std::to_string(numRows) + " rows of " + std::to_string(runBytes) + " bytes " +
                        std::to_string(rowBytes) + " apart from byte " + std::to_string(start));
}

// (src, srcStart, srcRowBytes, dest, destStart, destRowBytes, runBytes, numRows)
Napi::Value CopyRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto src = u8Arg(info, 0, "src");
  size_t srcStart = sizeArg(info, 1, "srcStart");
  size_t srcRowBytes = sizeArg(info, 2, "srcRowBytes");
  auto dest = u8Arg(info, 3, "dest");
  size_t destStart = sizeArg(info, 4, "destStart");
  size_t destRowBytes = sizeArg(info, 5, "destRowBytes");
  size_t runBytes = sizeArg(info, 6, "runBytes");
  size_t numRows = sizeArg(info, 7, "numRows");
  if (numRows > 1 && (runBytes > srcRowBytes || runBytes > destRowBytes))
    throwRange(env, "runBytes must not exceed either row stride");
  requireRows(env, "src", src.length, srcStart, srcRowBytes, runBytes, numRows);
  requireRows(env, "dest", dest.length, destStart, destRowBytes, runBytes, numRows);
  const uint8_t* from = src.data + srcStart;
  uint8_t* to = dest.data + destStart;
  size_t totalBytes = numRows * runBytes;
  const uint8_t* fromEnd = from + (numRows ? (numRows - 1) * srcRowBytes + runBytes : 0);
  uint8_t* toEnd = to + (numRows ? (numRows - 1) * destRowBytes + runBytes : 0);
  bool isApart = fromEnd <= to || toEnd <= from;
  if (isApart && totalBytes >= kStreamMinBytes && runBytes >= kStreamMinRunBytes) {
    for (size_t r = 0; r < numRows; r++) streamCopy(to + r * destRowBytes, from + r * srcRowBytes, runBytes);
    _mm_sfence();
    return env.Undefined();
  }
  // memmove: a caller may pass two views of one buffer.
  for (size_t r = 0; r < numRows; r++) std::memmove(to + r * destRowBytes, from + r * srcRowBytes, runBytes);
  return env.Undefined();
}

}  // namespace

void registerCopyRows(Napi::Env env, Napi::Object exports) {
  exports.Set("copyRows", Napi::Function::New(env, CopyRows));
}

}  // namespace seesaw
