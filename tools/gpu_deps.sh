#!/usr/bin/env bash
# Downloads (does not install) the Debian packages evit builds against into .gpu_deps/, for a
# GPU machine that has CUDA, CMake and PyTorch but none of our libraries and no network.
# tools/gpu_check.sh unpacks them into a private prefix there when the system lacks them.
# Run here, from the repository root, before sending the tree to the GPU machine:
#   bash tools/gpu_deps.sh            (needs apt-get; about 15 MB)
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.gpu_deps/' .git/info/exclude 2>/dev/null || echo '/.gpu_deps/' >> .git/info/exclude
mkdir -p .gpu_deps
packages=(libopenblas-dev libopenblas-pthread-dev libopenblas0-pthread libgfortran5 libquadmath0
          nlohmann-json3-dev catch2 libcli11-dev libpng-dev libpng16-16 zlib1g-dev zlib1g
          libjpeg62-turbo-dev libjpeg62-turbo libjpeg-dev)
apt-get update -qq
(cd .gpu_deps && apt-get download "${packages[@]}" >/dev/null)
du -sh .gpu_deps
ls .gpu_deps
