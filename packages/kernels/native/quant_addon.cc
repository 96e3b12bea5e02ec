// N-API glue for quant_matmul: argument checks (every length backed by the typed arrays) and
// the kernel-path report for `seesaw info`.
#include "quant_addon.h"

#include <string>

#include "args.h"
#include "quant_matmul.h"
#include "quant_packed.h"

namespace seesaw {
namespace {

// (out, x, m, type, w: Uint8Array, n, k, path) ; type 0 = Q8_0, 1 = Q4_0; path -1 = default
Napi::Value QuantMatmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = f32Arg(info, 0, "out");
  auto x = f32Arg(info, 1, "x");
  size_t m = sizeArg(info, 2, "m");
  size_t typeCode = sizeArg(info, 3, "type", 1);
  auto w = typedArg<uint8_t, napi_uint8_array>(info, 4, "weight data", "Uint8Array");
  size_t n = sizeArg(info, 5, "rows");
  size_t k = sizeArg(info, 6, "cols");
  double pathCode = numberArg(info, 7, "path");
  QuantType type = static_cast<QuantType>(typeCode);
  if (k % kQuantBlock != 0) throwRange(env, "cols " + std::to_string(k) + " is not a multiple of 32");
  QuantPath path = defaultQuantPath();
  if (pathCode >= 0) {
    if (pathCode >= kNumQuantPaths || pathCode != static_cast<int>(pathCode)) throwRange(env, "unknown kernel path");
    path = static_cast<QuantPath>(static_cast<int>(pathCode));
    if (!quantPathSupported(path))
      throwRange(env, std::string("kernel path ") + quantPathName(path) + " is not supported by this CPU");
  }
  requireLength(env, "weight data", w.length, checkedMul(env, n, (k / kQuantBlock) * quantBlockBytes(type)));
  requireLength(env, "x", x.length, checkedMul(env, m, k));
  requireLength(env, "out", out.length, checkedMul(env, m, n));
  quantMatmul(out.data, x.data, m, type, w.data, n, k, path);
  return env.Undefined();
}

QuantPath pathArg(Napi::Env env, double pathCode) {
  if (pathCode < 0) return defaultQuantPath();
  if (pathCode >= kNumQuantPaths || pathCode != static_cast<int>(pathCode)) throwRange(env, "unknown kernel path");
  QuantPath path = static_cast<QuantPath>(static_cast<int>(pathCode));
  if (!quantPathSupported(path))
    throwRange(env, std::string("kernel path ") + quantPathName(path) + " is not supported by this CPU");
  return path;
}

QuantType typeArg(const Napi::CallbackInfo& info, size_t i) {
  return static_cast<QuantType>(sizeArg(info, i, "type", 1));
}

size_t packedBytes(Napi::Env env, QuantType type, size_t n, size_t k) {
  if (k % kQuantBlock != 0) throwRange(env, "cols " + std::to_string(k) + " is not a multiple of 32");
  return checkedMul(env, (n + kPackedTileRows - 1) / kPackedTileRows, packedTileBytes(type, k));
}

// (type, blocks: Uint8Array, rows, cols, packed: Uint8Array)
Napi::Value QuantPack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  QuantType type = typeArg(info, 0);
  auto w = typedArg<uint8_t, napi_uint8_array>(info, 1, "weight data", "Uint8Array");
  size_t n = sizeArg(info, 2, "rows");
  size_t k = sizeArg(info, 3, "cols");
  auto packed = typedArg<uint8_t, napi_uint8_array>(info, 4, "packed", "Uint8Array");
  requireLength(env, "packed", packed.length, packedBytes(env, type, n, k));
  requireLength(env, "weight data", w.length, checkedMul(env, n, (k / kQuantBlock) * quantBlockBytes(type)));
  packQuantWeight(type, w.data, n, k, packed.data);
  return env.Undefined();
}

// (type, packed, rows, cols, blocks: Uint8Array)
Napi::Value QuantUnpack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  QuantType type = typeArg(info, 0);
  auto packed = typedArg<uint8_t, napi_uint8_array>(info, 1, "packed", "Uint8Array");
  size_t n = sizeArg(info, 2, "rows");
  size_t k = sizeArg(info, 3, "cols");
  auto w = typedArg<uint8_t, napi_uint8_array>(info, 4, "weight data", "Uint8Array");
  requireLength(env, "packed", packed.length, packedBytes(env, type, n, k));
  requireLength(env, "weight data", w.length, checkedMul(env, n, (k / kQuantBlock) * quantBlockBytes(type)));
  unpackQuantWeight(type, packed.data, n, k, w.data);
  return env.Undefined();
}

// (out, x, m, type, packed, n, k, path)
Napi::Value QuantMatmulPacked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = f32Arg(info, 0, "out");
  auto x = f32Arg(info, 1, "x");
  size_t m = sizeArg(info, 2, "m");
  QuantType type = typeArg(info, 3);
  auto packed = typedArg<uint8_t, napi_uint8_array>(info, 4, "packed", "Uint8Array");
  size_t n = sizeArg(info, 5, "rows");
  size_t k = sizeArg(info, 6, "cols");
  QuantPath path = pathArg(env, numberArg(info, 7, "path"));
  requireLength(env, "packed", packed.length, packedBytes(env, type, n, k));
  requireLength(env, "x", x.length, checkedMul(env, m, k));
  requireLength(env, "out", out.length, checkedMul(env, m, n));
  quantMatmulPacked(out.data, x.data, m, type, packed.data, n, k, path);
  return env.Undefined();
}

// (type, rows, cols) -> packed byte length
Napi::Value QuantPackedBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::Number::New(env, static_cast<double>(packedBytes(env, typeArg(info, 0), sizeArg(info, 1, "rows"),
                                                                sizeArg(info, 2, "cols"))));
}

// -> { chosen: name, supported: [names] }
Napi::Value QuantKernelPaths(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("chosen", quantPathName(defaultQuantPath()));
  Napi::Array supported = Napi::Array::New(env);
  uint32_t count = 0;
  for (int p = 0; p < kNumQuantPaths; p++) {
    if (quantPathSupported(static_cast<QuantPath>(p))) supported.Set(count++, quantPathName(static_cast<QuantPath>(p)));
  }
  result.Set("supported", supported);
  return result;
}

}  // namespace

void registerQuantKernels(Napi::Env env, Napi::Object exports) {
  exports.Set("quantMatmul", Napi::Function::New(env, QuantMatmul));
  exports.Set("quantKernelPaths", Napi::Function::New(env, QuantKernelPaths));
  exports.Set("quantPack", Napi::Function::New(env, QuantPack));
  exports.Set("quantUnpack", Napi::Function::New(env, QuantUnpack));
  exports.Set("quantMatmulPacked", Napi::Function::New(env, QuantMatmulPacked));
  exports.Set("quantPackedBytes", Napi::Function::New(env, QuantPackedBytes));
}

}  // namespace seesaw
