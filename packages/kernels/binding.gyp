{
  "targets": [
    {
      "target_name": "seesaw_kernels",
      "sources": [
        "native/addon.cc",
        "native/attention.cc",
        "native/copy_rows.cc",
        "native/matmul.cc",
        "native/matmul_avx2.cc",
        "native/matmul_avx512.cc",
        "native/populate_pages.cc",
        "native/probes.cc",
        "native/quant_addon.cc",
        "native/quant_dot_x86.cc",
        "native/quant_matmul.cc",
        "native/quant_packed.cc",
        "native/quant_packed_x86.cc",
        "native/quant_rows.cc",
        "native/rowwise.cc",
        "native/sampling.cc",
        "native/thread_pool.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      # NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS: a worker thread terminated inside a kernel call
      # cannot take a JS exception; without it node-addon-api rethrows past the N-API boundary
      # and std::terminate kills the whole process (worker-termination.test.ts).
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-O3", "-mavx2", "-mfma", "-mf16c", "-std=c++17", "-fno-math-errno", "-fexceptions"],
      "cflags": ["-O3", "-mavx2", "-mfma", "-mf16c"],
      "ldflags": ["-pthread"]
    }
  ]
}
