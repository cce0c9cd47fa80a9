#!/usr/bin/env bash
# Installs the Debian packages evit builds and tests with, if any are missing (needs root or
# sudo). iproute2 makes the network namespaces of the two-machine training test.
set -euo pipefail
packages=(cmake g++ make pkg-config libopenblas-dev nlohmann-json3-dev catch2 libcli11-dev
          libpng-dev libjpeg62-turbo-dev libdnnl-dev libonnx-dev libprotobuf-dev openmpi-bin libopenmpi-dev
          gnuplot-nox iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "evit: all build dependencies are installed"
  exit 0
fi
echo "evit: installing ${missing[*]}"
sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
$sudo_cmd apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
