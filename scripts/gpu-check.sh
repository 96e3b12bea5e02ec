#!/usr/bin/env bash
# GPU check for the WebGPU backend, for a Linux machine with a GPU (NVIDIA: its driver ships the
# Vulkan ICD Dawn uses) and Node 20, run from a clone where `pnpm install` has already run (the
# machine needs no network then; scripts/gpu-bundle.sh and gpu-remote.sh bring Node and the
# dependencies to a machine that has neither). In under 8 minutes it runs:
#   1. the WebGPU test files (kernels and forward pass against the float64 reference and the CPU
#      engine; `seesaw run --backend webgpu` on 1 and 2 devices against the CPU engine's tokens),
#   2. the kernel bench: FMA peak, copy bandwidth, matmul and decode-GEMV fractions of them,
#   3. the end-to-end bench on the medium shape (bf16; 32 prompts x 128 tokens, 64 output tokens).
# SEESAW_GPU_CHECK_REDUCED=1 runs reduced sizes (for a software adapter such as lavapipe).
set -euo pipefail
cd "$(dirname "$0")/.."
node -e 'if (+process.versions.node.split(".")[0] < 20) { console.error("Node 20 or newer needed, found " + process.version); process.exit(1) }'
if ! [ -d node_modules/.pnpm ]; then
  echo "dependencies missing: run pnpm install --frozen-lockfile first" >&2
  exit 1
fi
if [ "${SEESAW_GPU_CHECK_REDUCED:-0}" = 1 ]; then
  kernel_args=(--reduced)
  e2e_args=(--shape tiny --prompts 4 --prompt-len 16 --output 8)
else
  kernel_args=()
  e2e_args=(--shape medium --dtype bf16 --prompts 32 --prompt-len 128 --output 64)
fi
# Dawn prints two harmless limit warnings per device; keep the output to what matters.
quiet() { grep -v 'artificially reduced' || true; }
# A package.json script under a time limit, as `pnpm -s <name>` runs it, without needing pnpm (a
# GPU machine set up by scripts/gpu-remote.sh has Node only). Usage: run_script SECONDS NAME ARGS...
run_script() {
  local seconds=$1 name=$2 command
  command=$(node -p "require('./package.json').scripts['$name'] ?? ''")
  [ -n "$command" ] || { echo "no script $name in package.json" >&2; return 1; }
  shift 2
  PATH="$PWD/node_modules/.bin:$PATH" timeout "$seconds" bash -c "$command \"\$@\"" "$name" "$@"
}

echo "== 1/3 WebGPU tests"
# A failing or slow test must not cost the figures: report it and go on to the benches.
timeout 200 node_modules/.bin/vitest run packages/webgpu-device apps/cli/src/webgpu-backend.e2e.test.ts \
  apps/cli/src/webgpu-multi-device.e2e.test.ts 2>&1 | quiet ||
  echo "== WebGPU tests FAILED or timed out (exit ${PIPESTATUS[0]}); the benches still run"
echo "== 2/3 kernel bench"
run_script 100 bench:webgpu "${kernel_args[@]}" 2>&1 | quiet
echo "== 3/3 end-to-end bench"
run_script 220 bench:webgpu-e2e "${e2e_args[@]}" 2>&1 | quiet
