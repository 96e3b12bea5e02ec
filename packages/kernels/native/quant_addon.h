// N-API entry points of the quantized-weight kernels, registered by addon.cc.
#pragma once
#include <napi.h>

namespace seesaw {
void registerQuantKernels(Napi::Env env, Napi::Object exports);
}
