#!/usr/bin/env bash
# Installs every Debian 12 package dreamfleet needs to build, test and run. Idempotent: quiet and
# fast when nothing is missing. Run as root (or with sudo available).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git python3
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libyaml-cpp-dev libgtest-dev libgmock-dev googletest
  prometheus-cpp-dev civetweb libcivetweb-dev
  libtorch-dev libopenblas0-pthread libgoogle-perftools-dev
  libretro-nestopia libretro-gambatte retroarch-dev cc65
  libzstd-dev zlib1g-dev libpng-dev libgif-dev libcairo2-dev fonts-dejavu-core libssl-dev
  prometheus docker-compose openssl
  clang libclang-rt-14-dev
)
# kubectl renders the Kubernetes manifests in the tests; Debian's kubernetes-client conflicts with
# other kubectl packages, so it is only installed when no kubectl is present.
command -v kubectl >/dev/null 2>&1 || PACKAGES+=(kubernetes-client)

missing=()
for package in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "setup.sh: run as root to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "setup.sh: installing ${#missing[@]} Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup.sh: done"
