#pragma once
#include <napi.h>

namespace seesaw {

// Adds copyRows (a strided byte copy) to the addon's exports.
void registerCopyRows(Napi::Env env, Napi::Object exports);

}  // namespace seesaw
