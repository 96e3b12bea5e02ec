#!/usr/bin/env bash
# The whole engine on a GPU, after scripts/gpu-check.sh (which drives the forward pass directly):
#   1. `seesaw bench --backend webgpu` on the medium shape (bf16; 32 prompts x 128, 64 output
#      tokens): coordinator, device worker thread, GPU KV cache and sampling, as users run it;
#   2. `seesaw profile --backend webgpu`: the adapter's kernel figures as a cluster profile the
#      planner loads (written to $OUT/webgpu-profile.json when OUT is set, else a temporary folder);
#   3. Seesaw P2->T2 against the static layouts with two device actors sharing the one adapter
#      (small shape): TP all-reduce and PP activations go through host memory (see the README).
# Each step has its own time limit; a failing one is reported and the next still runs. Needs
# Node 20 and the installed dependencies, as gpu-check.sh does (scripts/gpu-remote.sh sets both up).
# SEESAW_GPU_CHECK_REDUCED=1 runs the tiny shape with few tokens (for a software adapter).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-$(mktemp -d)}
quiet() { grep -v 'artificially reduced' || true; }
seesaw() { timeout "$1" node_modules/.bin/tsx apps/cli/src/main.ts "${@:2}" 2>&1 | quiet; }
step() { echo "== $1"; }
failed() { echo "== step FAILED or timed out (exit $1)"; }
if [ "${SEESAW_GPU_CHECK_REDUCED:-0}" = 1 ]; then
  one=(--shape tiny --num-prompts 4 --input-len 16 --output-len 8)
  two=("${one[@]}")
  profile=(--quick)
else
  one=(--shape medium --num-prompts 32 --input-len 128 --output-len 64)
  two=(--shape small --num-prompts 32 --input-len 128 --output-len 64)
  profile=()
fi

step "1/3 seesaw bench --backend webgpu ${one[*]} (bf16)"
seesaw 170 bench --backend webgpu --dtype bf16 "${one[@]}" || failed $?
step "2/3 seesaw profile --backend webgpu"
seesaw 120 profile --backend webgpu --devices 1 "${profile[@]}" --out "$out/webgpu-profile.json" || failed $?
step "3/3 Seesaw against static layouts, two actors on the one adapter: ${two[*]} (bf16)"
seesaw 170 bench --backend webgpu --dtype bf16 "${two[@]}" --gpus-per-adapter 2 --host-kv-memory 2GiB \
  --compare seesaw:P2-T2,static:T2,static:P2,static:D2 || failed $?
