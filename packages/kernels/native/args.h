// Argument checks for the N-API entry points: every shape is untrusted, so each pointer handed
// to a kernel is backed by a typed array long enough for everything the kernel touches.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "simd.h"

namespace seesaw {

template <class T>
struct Span {
  T* data;
  size_t length;
};

[[noreturn]] inline void throwType(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }
[[noreturn]] inline void throwRange(Napi::Env env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }

template <class T, napi_typedarray_type Kind>
Span<T> typedArg(const Napi::CallbackInfo& info, size_t i, const char* name, const char* typeName) {
  Napi::Value v = info[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != Kind)
    throwType(info.Env(), std::string(name) + " must be a " + typeName);
  auto arr = v.As<Napi::TypedArrayOf<T>>();
  return {arr.Data(), arr.ElementLength()};
}

inline Span<float> f32Arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return typedArg<float, napi_float32_array>(info, i, name, "Float32Array");
}
inline Span<int32_t> i32Arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return typedArg<int32_t, napi_int32_array>(info, i, name, "Int32Array");
}
inline Span<uint16_t> u16Arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return typedArg<uint16_t, napi_uint16_array>(info, i, name, "Uint16Array");
}

inline double numberArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) throwType(info.Env(), std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

// A non-negative integer no larger than maxValue (sizes are capped well below 2^53).
inline size_t sizeArg(const Napi::CallbackInfo& info, size_t i, const char* name, double maxValue = 1e12) {
  double v = numberArg(info, i, name);
  if (!(v >= 0) || v != std::floor(v) || v > maxValue)
    throwRange(info.Env(), std::string(name) + " must be an integer in [0, " + std::to_string(int64_t(maxValue)) +
                               "], got " + std::to_string(v));
  return static_cast<size_t>(v);
}

inline size_t positiveArg(const Napi::CallbackInfo& info, size_t i, const char* name, double maxValue = 1e12) {
  size_t v = sizeArg(info, i, name, maxValue);
  if (v == 0) throwRange(info.Env(), std::string(name) + " must be at least 1");
  return v;
}

inline size_t checkedMul(Napi::Env env, size_t a, size_t b) {
  size_t r;
  if (__builtin_mul_overflow(a, b, &r)) throwRange(env, "shape too large");
  return r;
}

inline void requireLength(Napi::Env env, const char* name, size_t have, size_t need) {
  if (have < need)
    throwRange(env, std::string(name) + " too short: length " + std::to_string(have) + ", needs " +
                        std::to_string(need));
}

// Elements a strided view touches: rows of `width` starting every `stride`.
inline size_t stridedExtent(Napi::Env env, size_t rows, size_t stride, size_t width) {
  if (rows == 0) return 0;
  size_t r = checkedMul(env, rows - 1, stride);
  if (__builtin_add_overflow(r, width, &r)) throwRange(env, "shape too large");
  return r;
}

struct WeightArg {
  const void* data;
  DType dtype;
  size_t rows;
  size_t cols;
};

// A weight is passed as four arguments: dtype code, rows, cols, data.
inline WeightArg weightArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Env env = info.Env();
  double code = numberArg(info, i, name);
  size_t rows = sizeArg(info, i + 1, "weight rows");
  size_t cols = sizeArg(info, i + 2, "weight cols");
  size_t need = checkedMul(env, rows, cols);
  WeightArg w{nullptr, DType::F32, rows, cols};
  size_t have;
  if (code == 0) {
    auto s = f32Arg(info, i + 3, "f32 weight data");
    w.data = s.data;
    have = s.length;
  } else if (code == 1 || code == 2) {
    auto s = u16Arg(info, i + 3, code == 1 ? "f16 weight data" : "bf16 weight data");
    w.data = s.data;
    w.dtype = code == 1 ? DType::F16 : DType::BF16;
    have = s.length;
  } else {
    throwType(env, std::string(name) + ": unknown weight dtype code");
  }
  if (have != need)
    throwRange(env, std::string(name) + " data length " + std::to_string(have) + " does not match rows*cols = " +
                        std::to_string(need));
  return w;
}

}  // namespace seesaw
