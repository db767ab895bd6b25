#!/usr/bin/env bash
# Builds libapache2-mod-fpm-replica_*.deb from this checkout into OUTDIR
# (default: ./dist), out of tree: the source is copied to OUTDIR/src first,
# so the checkout stays clean and dpkg-buildpackage's ../ is OUTDIR.
# Installs the build dependencies with apt-get when run as root.
# Used by the README, docker/Dockerfile and tests/integration/test_990_package.py
# alike (the test runs it in a copy of a clean Debian 12 root, as the
# Dockerfile's build stage does).
#
#   bash debian/build-deb.sh [OUTDIR]      DEB_BUILD_OPTIONS=nocheck skips the unit tests
set -euo pipefail
source_dir="$(cd "$(dirname "$0")/.." && pwd)"
out_dir="$(mkdir -p "${1:-$source_dir/dist}" && cd "${1:-$source_dir/dist}" && pwd)"

# debian/control's Build-Depends, and build-essential, which dpkg-buildpackage
# always requires.
build_packages=(build-essential debhelper dpkg-dev fakeroot apache2-dev libcap-dev libcurl4-openssl-dev
                nlohmann-json3-dev cmake g++ catch2)
missing=()
for p in "${build_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" != 0 ]; then
        echo "build-deb: missing packages ${missing[*]}; run as root to install them" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    # From the package lists already here if they suffice (the package test
    # builds offline); a fresh container has none, so fetch them then.
    apt-get install -y -q --no-install-recommends "${missing[@]}" || {
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    }
fi

rm -rf "$out_dir/src"
mkdir -p "$out_dir/src"
# Everything but build trees, VCS data and earlier outputs.
tar -C "$source_dir" --exclude=./.git --exclude=./build --exclude=./dist \
    --exclude='./obj-*' -cf - . | tar -C "$out_dir/src" -xf -
cd "$out_dir/src"
dpkg-buildpackage -us -uc -b -j"$(nproc)"
ls -1 "$out_dir"/*.deb
