#!/usr/bin/env bash
# Installs the built evit into a temporary prefix and builds a program outside the tree against
# it with find_package(evit) (tools/install_check/), then runs that program.
#   bash tools/install_check.sh [BUILD_DIR]     (default build/, already built)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S tools/install_check -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$tmp/consumer" -j"$(nproc)" >/dev/null
"$tmp/consumer/consumer"
echo "install_check: find_package(evit) and evit::zoo work from an install"
