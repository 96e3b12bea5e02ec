#!/usr/bin/env bash
# On a GPU machine without Node or network: unpacks what scripts/gpu-bundle.sh packed into .gpu/
# (carried there beside the working tree) and runs the scripts named as arguments in turn
# (default scripts/gpu-check.sh), each one's log also written to $OUT/NAME.log when OUT is set (the
# `device` tool brings that folder back). For example:
#   run(command: "scripts/gpu-remote.sh scripts/gpu-check.sh scripts/gpu-engine-check.sh",
#       carry: [".gpu"], timeout_s: 590)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f .gpu/node.xz ] || { echo ".gpu/ missing: run scripts/gpu-bundle.sh here first, then carry .gpu" >&2; exit 1; }
# The loader, where the driver shipped only its ICD (the packages unpack into / as the device
# machines' notes advise; nothing else is unpacked there).
if ! ldconfig -p | grep -q 'libvulkan.so.1 '; then
  for deb in .gpu/debs/*.deb; do dpkg -x "$deb" /; done
  ldconfig
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$nvidia_icd" ] && ! ls /usr/share/vulkan/icd.d/nvidia* >/dev/null 2>&1 &&
  ! ls /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
  export VK_DRIVER_FILES=$nvidia_icd
fi
node_dir=$(mktemp -d)
xz -dc .gpu/node.xz >"$node_dir/node"
chmod +x "$node_dir/node"
export PATH="$node_dir:$PATH"
tar -xJf .gpu/deps.tar.xz
echo "== $(node --version) on $(uname -m), $(nproc) cores; GPUs: $(nvidia-smi -L 2>/dev/null || echo 'nvidia-smi not found')"
logs=${OUT:-$(mktemp -d)}
status=0
for script in "${@:-scripts/gpu-check.sh}"; do
  "$script" 2>&1 | tee "$logs/$(basename "$script" .sh).log" || status=1
done
exit $status
