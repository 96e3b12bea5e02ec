// N-API entry points: argument validation, then a call into the kernels. The TypeScript
// wrapper (src/index.ts) flattens Weight objects to (dtype code, rows, cols, data).
#include <napi.h>

#include <cmath>
#include <string>
#include <vector>

#include "args.h"
#include "attention.h"
#include "matmul.h"
#include "probes.h"
#include "copy_rows.h"
#include "populate_pages.h"
#include "quant_addon.h"
#include "rowwise.h"
#include "sampling.h"
#include "thread_pool.h"

namespace seesaw {
namespace {

constexpr double kMaxThreads = 256;

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  setCurrentThreadCount(static_cast<int>(positiveArg(info, 0, "threads", kMaxThreads)));
  return info.Env().Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), currentThreadCount());
}

// (out, x, m, dtype, rows, cols, data, bias?, leaves?, path?)
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = f32Arg(info, 0, "out");
  auto x = f32Arg(info, 1, "x");
  size_t m = sizeArg(info, 2, "m");
  WeightArg w = weightArg(info, 3, "weight");
  requireLength(env, "x", x.length, checkedMul(env, m, w.cols));
  requireLength(env, "out", out.length, checkedMul(env, m, w.rows));
  const float* bias = nullptr;
  if (!info[7].IsUndefined()) {
    auto b = f32Arg(info, 7, "bias");
    if (b.length != w.rows)
      throwRange(env, "bias length " + std::to_string(b.length) + " must equal weight rows " + std::to_string(w.rows));
    bias = b.data;
  }
  const size_t leaves = info[8].IsUndefined() ? 1 : sizeArg(info, 8, "leaves");
  if (leaves < 1 || leaves > kMaxMatmulLeaves || w.cols % leaves != 0)
    throwRange(env, "leaves " + std::to_string(leaves) + " must be in 1.." + std::to_string(kMaxMatmulLeaves) +
                        " and divide the weight's " + std::to_string(w.cols) + " columns");
  MatmulPath path = defaultMatmulPath();
  if (!info[9].IsUndefined()) {
    const std::string name = info[9].As<Napi::String>().Utf8Value();
    if (name == "avx2") {
      path = MatmulPath::Avx2;
    } else if (name == "avx512") {
      path = MatmulPath::Avx512;
    } else {
      throwRange(env, "unknown matmul path '" + name + "' (avx2 or avx512)");
    }
    if (!matmulPathSupported(path)) throwRange(env, "this CPU cannot run the " + name + " matmul path");
  }
  matmul(out.data, x.data, m, w.data, w.dtype, w.rows, w.cols, leaves, bias, path);
  return env.Undefined();
}

// The matmul paths this CPU runs, and the one chosen by default.
Napi::Value MatmulPaths(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array supported = Napi::Array::New(env);
  uint32_t i = 0;
  for (MatmulPath p : {MatmulPath::Avx2, MatmulPath::Avx512}) {
    if (matmulPathSupported(p)) supported.Set(i++, Napi::String::New(env, matmulPathName(p)));
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("supported", supported);
  result.Set("chosen", Napi::String::New(env, matmulPathName(defaultMatmulPath())));
  return result;
}

// (out, x, weight, eps)
Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = f32Arg(info, 0, "out");
  auto x = f32Arg(info, 1, "x");
  auto weight = f32Arg(info, 2, "weight");
  double eps = numberArg(info, 3, "eps");
  if (!(eps >= 0) || !std::isfinite(eps)) throwRange(env, "eps must be finite and >= 0");
  if (weight.length == 0) throwRange(env, "weight must not be empty");
  if (x.length % weight.length != 0)
    throwRange(env, "x length " + std::to_string(x.length) + " is not a multiple of weight length " +
                        std::to_string(weight.length));
  requireLength(env, "out", out.length, x.length);
  rmsNorm(out.data, x.data, weight.data, x.length / weight.length, weight.length, static_cast<float>(eps));
  return env.Undefined();
}

// (x, y)
Napi::Value AddInPlace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto x = f32Arg(info, 0, "x");
  auto y = f32Arg(info, 1, "y");
  if (x.length != y.length)
    throwRange(env, "x and y lengths differ: " + std::to_string(x.length) + " vs " + std::to_string(y.length));
  addInPlace(x.data, y.data, x.length);
  return env.Undefined();
}

// (x, numTokens, numHeads, headDim, rowStride, cos, sin)
Napi::Value Rope(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto x = f32Arg(info, 0, "x");
  size_t tokens = sizeArg(info, 1, "numTokens");
  size_t heads = sizeArg(info, 2, "numHeads");
  size_t headDim = positiveArg(info, 3, "headDim");
  size_t rowStride = sizeArg(info, 4, "rowStride");
  auto cos = f32Arg(info, 5, "cos");
  auto sin = f32Arg(info, 6, "sin");
  if (headDim % 2 != 0) throwRange(env, "headDim must be even");
  size_t width = checkedMul(env, heads, headDim);
  if (rowStride < width) throwRange(env, "rowStride must be >= numHeads*headDim");
  requireLength(env, "x", x.length, stridedExtent(env, tokens, rowStride, width));
  requireLength(env, "cos", cos.length, checkedMul(env, tokens, headDim / 2));
  requireLength(env, "sin", sin.length, checkedMul(env, tokens, headDim / 2));
  rope(x.data, tokens, heads, headDim, rowStride, cos.data, sin.data);
  return env.Undefined();
}

// (out, gateUp, rows, intermediate)
Napi::Value SiluMul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = f32Arg(info, 0, "out");
  auto gateUp = f32Arg(info, 1, "gateUp");
  size_t rows = sizeArg(info, 2, "rows");
  size_t inter = sizeArg(info, 3, "intermediate");
  size_t outNeed = checkedMul(env, rows, inter);
  requireLength(env, "gateUp", gateUp.length, checkedMul(env, outNeed, 2));
  requireLength(env, "out", out.length, outNeed);
  siluMul(out.data, gateUp.data, rows, inter);
  return env.Undefined();
}

// (out, dtype, rows, cols, data, ids)
Napi::Value Embed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = f32Arg(info, 0, "out");
  WeightArg table = weightArg(info, 1, "table");
  auto ids = i32Arg(info, 5, "ids");
  requireLength(env, "out", out.length, checkedMul(env, ids.length, table.cols));
  for (size_t t = 0; t < ids.length; t++) {
    if (ids.data[t] < 0 || static_cast<size_t>(ids.data[t]) >= table.rows)
      throwRange(env, "token id " + std::to_string(ids.data[t]) + " at " + std::to_string(t) + " outside [0, " +
                          std::to_string(table.rows) + ")");
  }
  embed(out.data, table.data, table.dtype, table.cols, ids.data, ids.length);
  return env.Undefined();
}

struct CacheShape {
  size_t numKvHeads, headDim, blockSize, numBlocks;
};

// A K and V cache pair of one element type: Float32Array (f32) or Uint16Array (bf16 / f16).
struct KvCaches {
  void* k;
  void* v;
  size_t length;
  DType type;
};

KvCaches kvCacheArgs(const Napi::CallbackInfo& info, size_t kAt, size_t vAt, size_t typeAt) {
  Napi::Env env = info.Env();
  const size_t code = sizeArg(info, typeAt, "kv dtype", 2);
  const DType type = static_cast<DType>(code);
  if (type == DType::F32) {
    auto k = f32Arg(info, kAt, "kCache");
    auto v = f32Arg(info, vAt, "vCache");
    if (k.length != v.length) throwRange(env, "kCache and vCache lengths differ");
    return {k.data, v.data, k.length, type};
  }
  auto k = u16Arg(info, kAt, "kCache");
  auto v = u16Arg(info, vAt, "vCache");
  if (k.length != v.length) throwRange(env, "kCache and vCache lengths differ");
  return {k.data, v.data, k.length, type};
}

CacheShape cacheShape(const Napi::CallbackInfo& info, size_t i, const KvCaches& caches) {
  Napi::Env env = info.Env();
  CacheShape c{};
  c.numKvHeads = positiveArg(info, i, "layout.numKvHeads");
  c.headDim = positiveArg(info, i + 1, "layout.headDim");
  c.blockSize = positiveArg(info, i + 2, "layout.blockSize");
  size_t perBlock = checkedMul(env, checkedMul(env, c.numKvHeads, c.headDim), c.blockSize);
  if (caches.length % perBlock != 0)
    throwRange(env, "cache length " + std::to_string(caches.length) +
                        " is not a multiple of numKvHeads*blockSize*headDim = " + std::to_string(perBlock));
  c.numBlocks = caches.length / perBlock;
  return c;
}

// (kCache, vCache, k, v, rowStride, slots, numKvHeads, headDim, blockSize, kvDtype)
Napi::Value WriteKv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  KvCaches caches = kvCacheArgs(info, 0, 1, 9);
  auto k = f32Arg(info, 2, "k");
  auto v = f32Arg(info, 3, "v");
  size_t rowStride = sizeArg(info, 4, "rowStride");
  auto slots = i32Arg(info, 5, "slots");
  CacheShape c = cacheShape(info, 6, caches);
  size_t width = checkedMul(env, c.numKvHeads, c.headDim);
  if (rowStride < width) throwRange(env, "rowStride must be >= numKvHeads*headDim");
  size_t extent = stridedExtent(env, slots.length, rowStride, width);
  requireLength(env, "k", k.length, extent);
  requireLength(env, "v", v.length, extent);
  size_t numSlots = c.numBlocks * c.blockSize;
  for (size_t t = 0; t < slots.length; t++) {
    if (slots.data[t] < 0 || static_cast<size_t>(slots.data[t]) >= numSlots)
      throwRange(env, "slot " + std::to_string(slots.data[t]) + " at " + std::to_string(t) + " outside [0, " +
                          std::to_string(numSlots) + ")");
  }
  writeKv(caches.k, caches.v, caches.type, k.data, v.data, rowStride, slots.data, slots.length, c.numKvHeads,
          c.headDim, c.blockSize);
  return env.Undefined();
}

// (out, q, qRowStride, kCache, vCache, queryStart, contextLens, blockTables, maxBlocksPerSeq,
//  numHeads, numKvHeads, headDim, blockSize, scale, kvDtype)
Napi::Value PagedAttention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = f32Arg(info, 0, "out");
  auto q = f32Arg(info, 1, "q");
  size_t qRowStride = sizeArg(info, 2, "qRowStride");
  KvCaches caches = kvCacheArgs(info, 3, 4, 14);
  auto queryStart = i32Arg(info, 5, "batch.queryStart");
  auto contextLens = i32Arg(info, 6, "batch.contextLens");
  auto blockTables = i32Arg(info, 7, "batch.blockTables");
  size_t maxBlocks = sizeArg(info, 8, "batch.maxBlocksPerSeq");
  size_t numHeads = positiveArg(info, 9, "numHeads");
  CacheShape c = cacheShape(info, 10, caches);
  double scale = numberArg(info, 13, "scale");
  if (!std::isfinite(scale)) throwRange(env, "scale must be finite");
  if (numHeads % c.numKvHeads != 0) throwRange(env, "numHeads must be a multiple of numKvHeads");

  size_t numSeqs = contextLens.length;
  if (queryStart.length != numSeqs + 1)
    throwRange(env, "batch.queryStart length must be contextLens.length + 1 = " + std::to_string(numSeqs + 1));
  if (queryStart.data[0] != 0) throwRange(env, "batch.queryStart[0] must be 0");
  requireLength(env, "batch.blockTables", blockTables.length, checkedMul(env, numSeqs, maxBlocks));
  for (size_t s = 0; s < numSeqs; s++) {
    int32_t nq = queryStart.data[s + 1] - queryStart.data[s];
    if (queryStart.data[s + 1] < queryStart.data[s])
      throwRange(env, "batch.queryStart must be non-decreasing (at " + std::to_string(s + 1) + ")");
    if (contextLens.data[s] < nq)
      throwRange(env, "batch.contextLens[" + std::to_string(s) + "] = " + std::to_string(contextLens.data[s]) +
                          " is less than its " + std::to_string(nq) + " queries");
    if (nq == 0) continue;
    size_t blocksNeeded = (static_cast<size_t>(contextLens.data[s]) + c.blockSize - 1) / c.blockSize;
    if (blocksNeeded > maxBlocks)
      throwRange(env, "sequence " + std::to_string(s) + " needs " + std::to_string(blocksNeeded) +
                          " blocks, more than maxBlocksPerSeq " + std::to_string(maxBlocks));
    for (size_t b = 0; b < blocksNeeded; b++) {
      int32_t id = blockTables.data[s * maxBlocks + b];
      if (id < 0 || static_cast<size_t>(id) >= c.numBlocks)
        throwRange(env, "block id " + std::to_string(id) + " (sequence " + std::to_string(s) + ", entry " +
                            std::to_string(b) + ") outside [0, " + std::to_string(c.numBlocks) + ")");
    }
  }
  size_t tokens = static_cast<size_t>(queryStart.data[numSeqs]);
  size_t width = checkedMul(env, numHeads, c.headDim);
  if (qRowStride < width) throwRange(env, "qRowStride must be >= numHeads*headDim");
  requireLength(env, "q", q.length, stridedExtent(env, tokens, qRowStride, width));
  requireLength(env, "out", out.length, checkedMul(env, tokens, width));
  AttentionShape shape{numSeqs, numHeads, c.numKvHeads, c.headDim, c.blockSize, maxBlocks};
  pagedAttention(out.data, q.data, qRowStride, caches.k, caches.v, caches.type, queryStart.data, contextLens.data,
                 blockTables.data, shape, static_cast<float>(scale));
  return env.Undefined();
}

// (logits, rows, n) -> Int32Array
Napi::Value ArgmaxRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto logits = f32Arg(info, 0, "logits");
  size_t rows = sizeArg(info, 1, "rows");
  size_t n = positiveArg(info, 2, "n");
  requireLength(env, "logits", logits.length, checkedMul(env, rows, n));
  auto result = Napi::Int32Array::New(env, rows);
  argmaxRows(result.Data(), logits.data, rows, n);
  return result;
}

// (logits, temperature, topK, topP, uniform) -> token index
// One row's sampling settings, checked; topK clamped to [0, 2e9] (0: off).
struct RowSampling {
  double temperature;
  int64_t topK;
  double topP;
  double uniform;
};

RowSampling checkedSampling(Napi::Env env, double temperature, double topK, double topP, double uniform) {
  if (!(temperature > 0) || !std::isfinite(temperature)) throwRange(env, "temperature must be finite and > 0");
  if (topK != std::floor(topK) || std::isnan(topK)) throwRange(env, "topK must be an integer");
  if (std::isnan(topP)) throwRange(env, "topP must be a number");
  if (!(uniform >= 0 && uniform < 1)) throwRange(env, "uniform must be in [0, 1)");
  const int64_t k = topK > 2e9 ? int64_t(2e9) : topK < 0 ? 0 : static_cast<int64_t>(topK);
  return {temperature, k, topP, uniform};
}

// (logits, temperature, topK, topP, uniform) -> token id
Napi::Value SampleRow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto logits = f32Arg(info, 0, "logits");
  if (logits.length == 0) throwRange(env, "logits must not be empty");
  if (logits.length > 0x7fffffff) throwRange(env, "logits too long");
  const RowSampling p = checkedSampling(env, numberArg(info, 1, "temperature"), numberArg(info, 2, "topK"),
                                        numberArg(info, 3, "topP"), numberArg(info, 4, "uniform"));
  return Napi::Number::New(env, sampleRow(logits.data, logits.length, p.temperature, p.topK, p.topP, p.uniform));
}

// (out Int32Array[rows], logits [rows][vocab], vocab, settings Float64Array [rows][4] =
// temperature, topK, topP, uniform): sampleRow of every row (argmax where temperature is 0), rows
// spread over the thread pool.
Napi::Value SampleRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = i32Arg(info, 0, "out");
  auto logits = f32Arg(info, 1, "logits");
  const size_t vocab = positiveArg(info, 2, "vocab", 0x7fffffff);
  auto settings = typedArg<double, napi_float64_array>(info, 3, "settings", "Float64Array");
  const size_t rows = out.length;
  if (logits.length != checkedMul(env, rows, vocab))
    throwRange(env, "logits hold " + std::to_string(logits.length) + " floats, not " + std::to_string(rows) +
                        " rows of " + std::to_string(vocab));
  if (settings.length != checkedMul(env, rows, 4))
    throwRange(env, "settings hold " + std::to_string(settings.length) + " numbers, not 4 per row");
  // Temperature 0 marks a greedy row (argmaxRows' choice); the others are checked draws.
  std::vector<RowSampling> checked(rows);
  for (size_t r = 0; r < rows; r++) {
    const double* s = settings.data + 4 * r;
    checked[r] = s[0] == 0 ? RowSampling{0, 0, 1, 0} : checkedSampling(env, s[0], s[1], s[2], s[3]);
  }
  parallelFor(rows, [&](size_t r, int) {
    const RowSampling& p = checked[r];
    const float* row = logits.data + r * vocab;
    if (p.temperature == 0) {
      argmaxRows(out.data + r, row, 1, vocab);
    } else {
      out.data[r] = sampleRow(row, vocab, p.temperature, p.topK, p.topP, p.uniform);
    }
  });
  return env.Undefined();
}

Napi::Value ConvertTo16(const Napi::CallbackInfo& info, bool bf16) {
  Napi::Env env = info.Env();
  auto src = f32Arg(info, 0, "src");
  auto dst = u16Arg(info, 1, "dst");
  if (src.length != dst.length) throwRange(env, "src and dst lengths differ");
  (bf16 ? f32ToBf16 : f32ToF16)(src.data, dst.data, src.length);
  return env.Undefined();
}
Napi::Value F32ToBf16(const Napi::CallbackInfo& info) { return ConvertTo16(info, true); }
Napi::Value F32ToF16(const Napi::CallbackInfo& info) { return ConvertTo16(info, false); }

Napi::Value MeasureFmaPeak(const Napi::CallbackInfo& info) {
  size_t iterations = positiveArg(info, 0, "iterations", 1e11);
  const bool wide = !info[1].IsUndefined() && info[1].As<Napi::Boolean>().Value();
  if (wide && !matmulPathSupported(MatmulPath::Avx512)) throwRange(info.Env(), "this CPU has no AVX-512");
  return Napi::Number::New(info.Env(), measureFmaPeak(iterations, wide ? 16 : 8));
}

// (buffer) -> seconds to sum it on the pool
Napi::Value MeasureReadSeconds(const Napi::CallbackInfo& info) {
  auto data = f32Arg(info, 0, "buffer");
  double checksum = 0;
  double elapsed = measureReadSeconds(data.data, data.length, &checksum);
  if (checksum == 12345.678) elapsed += 1e-12;  // keeps the sum observable
  return Napi::Number::New(info.Env(), elapsed);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads));
  exports.Set("matmul", Napi::Function::New(env, Matmul));
  exports.Set("matmulPaths", Napi::Function::New(env, MatmulPaths));
  exports.Set("rmsNorm", Napi::Function::New(env, RmsNorm));
  exports.Set("addInPlace", Napi::Function::New(env, AddInPlace));
  exports.Set("rope", Napi::Function::New(env, Rope));
  exports.Set("siluMul", Napi::Function::New(env, SiluMul));
  exports.Set("embed", Napi::Function::New(env, Embed));
  exports.Set("writeKv", Napi::Function::New(env, WriteKv));
  exports.Set("pagedAttention", Napi::Function::New(env, PagedAttention));
  exports.Set("argmaxRows", Napi::Function::New(env, ArgmaxRows));
  exports.Set("sampleRow", Napi::Function::New(env, SampleRow));
  exports.Set("sampleRows", Napi::Function::New(env, SampleRows));
  exports.Set("f32ToBf16", Napi::Function::New(env, F32ToBf16));
  exports.Set("f32ToF16", Napi::Function::New(env, F32ToF16));
  exports.Set("measureFmaPeak", Napi::Function::New(env, MeasureFmaPeak));
  exports.Set("measureReadSeconds", Napi::Function::New(env, MeasureReadSeconds));
  registerQuantKernels(env, exports);
  registerCopyRows(env, exports);
  registerPopulatePages(env, exports);
  return exports;
}

}  // namespace
}  // namespace seesaw

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return seesaw::Init(env, exports); }

NODE_API_MODULE(seesaw_kernels, InitModule)
