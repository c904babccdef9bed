#!/usr/bin/env bash
# A newer lavapipe beside the system's: fetches Debian bookworm-backports' mesa-vulkan-drivers
# (Mesa 25.0 where Debian 12 ships 22.3) and the libdrm it needs into DIR, without touching
# the system's packages or apt sources, and writes DIR/env.sh, which points the Vulkan loader at
# it. Source that file in a shell and every command there runs on the newer driver; open another
# shell for the system's, so that both can be timed side by side on one machine:
#
#   scripts/lavapipe-backports.sh /opt/lavapipe-bpo
#   (. /opt/lavapipe-bpo/env.sh && cargo run --release -- info)   # "llvmpipe Mesa 25.0.7-..."
#
# Debian 12 (bookworm), x86-64, not root; install Debian's mesa-vulkan-drivers first: the new
# driver uses the system's Vulkan loader and LLVM (libvulkan1, libllvm15), which that pulls in.
set -euo pipefail

if [ $# -ne 1 ]; then
    sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
dir="$(mkdir -p "$1" && cd "$1" && pwd)"
suite=bookworm-backports
packages="mesa-vulkan-drivers libdrm2 libdrm-amdgpu1"

# A private apt state: its own sources list, package lists and cache under DIR.
mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$dir/debs" "$dir/root"
echo "deb http://deb.debian.org/debian $suite main" > "$dir/apt/sources.list"
apt_opts=(-o "Dir::Etc::sourcelist=$dir/apt/sources.list" -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::Lists=$dir/apt/lists" -o "Dir::Cache=$dir/apt/cache"
    -o "Dir::State::status=/var/lib/dpkg/status" -o "APT::Sandbox::User=root")
apt-get "${apt_opts[@]}" update -qq
(cd "$dir/debs" && rm -f ./*.deb && apt-get "${apt_opts[@]}" download $packages)
for deb in "$dir"/debs/*.deb; do
    dpkg-deb -x "$deb" "$dir/root"
done

lib="$dir/root/usr/lib/x86_64-linux-gnu"
if [ ! -f "$lib/libvulkan_lvp.so" ]; then
    echo "lavapipe-backports: $lib/libvulkan_lvp.so is missing after unpacking" >&2
    exit 1
fi
# The package's ICD file names the library by its bare name; point it at the unpacked one.
sed "s#\"library_path\": *\"[^\"]*\"#\"library_path\": \"$lib/libvulkan_lvp.so\"#" \
    "$dir/root/usr/share/vulkan/icd.d/lvp_icd.json" > "$dir/lvp_icd.json"
cat > "$dir/env.sh" <<EOF
# Source me: the Vulkan loader then finds only the lavapipe unpacked in $dir.
export VK_DRIVER_FILES="$dir/lvp_icd.json"
export VK_ICD_FILENAMES="$dir/lvp_icd.json"
export LD_LIBRARY_PATH="$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
EOF
version=$(dpkg-deb -f "$dir"/debs/mesa-vulkan-drivers_*.deb Version)
echo "lavapipe from mesa-vulkan-drivers $version unpacked in $dir; use it with: . $dir/env.sh"
