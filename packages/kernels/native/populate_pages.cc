// populatePages: maps the pages under a byte range for writing without changing a byte, with
// one madvise(MADV_POPULATE_WRITE) (Linux 5.14+). A Seesaw device first-touches the KV pages of
// its other layout ahead of the switch (kv-touch-ahead.ts) while other threads of the process
// run. Touching from JS takes an atomic read-modify-write per page, which V8 runs as a load and
// a compare-exchange: the load maps the shared zero page, the write replaces it, and that
// replacement flushes the TLB of every CPU running another thread of the process, an
// inter-processor interrupt that costs ~12-17 us a page on this VM against ~2 us for a fault
// taken by a write. The kernel's populate takes the write fault directly, with no user access.
#include "populate_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "args.h"

// Linux's value (uapi mman-common.h), for headers older than 5.14; other systems never call it.
#if defined(__linux__) && !defined(MADV_POPULATE_WRITE)
#define MADV_POPULATE_WRITE 23
#endif

namespace seesaw {

namespace {

// (bytes: Uint8Array, start, end) -> true when the pages of bytes[start, end) are mapped for
// writing; false when this kernel cannot (the caller then touches them itself).
Napi::Value PopulatePages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto bytes = typedArg<uint8_t, napi_uint8_array>(info, 0, "bytes", "Uint8Array");
  size_t start = sizeArg(info, 1, "start");
  size_t end = sizeArg(info, 2, "end");
  if (start > end || end > bytes.length) throwRange(env, "populatePages: [start, end) must lie within the array");
  if (start == end) return Napi::Boolean::New(env, true);
  // Whole pages: the ones the range overlaps lie in the mapping that holds the array, and
  // populating never changes a byte, so a neighbour's part of the first or last page is safe.
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t first = reinterpret_cast<uintptr_t>(bytes.data + start) & ~(page - 1);
  const uintptr_t last = (reinterpret_cast<uintptr_t>(bytes.data + end) + page - 1) & ~(page - 1);
#if defined(__linux__)
  int rc;
  do {
    rc = madvise(reinterpret_cast<void*>(first), last - first, MADV_POPULATE_WRITE);
  } while (rc != 0 && errno == EINTR);
  return Napi::Boolean::New(env, rc == 0);
#else
  (void)first;
  (void)last;
  return Napi::Boolean::New(env, false);
#endif
}

}  // namespace

void registerPopulatePages(Napi::Env env, Napi::Object exports) {
  exports.Set("populatePages", Napi::Function::New(env, PopulatePages));
}

}  // namespace seesaw
