#pragma once
#include <napi.h>

namespace seesaw {

// Adds populatePages (map a byte range's pages for writing, contents unchanged) to the addon's exports.
void registerPopulatePages(Napi::Env env, Napi::Object exports);

}  // namespace seesaw
