#!/usr/bin/env bash
# Prepares a clean Debian 12 root for the package tests (test_990_package.py):
# a debootstrap minbase system, plus the .debs those tests install into copies
# of it (the package's build dependencies; the demo image's apache2, php-fpm,
# python3 and curl; whatever those and libapache2-mod-fpm-replica depend on),
# downloaded into its apt cache but not installed. The tests run apt there
# without a network. Run by tests/setup.sh as root; idempotent (a root
# prepared for the same package list is kept).
#
#   bash tests/clean-root.sh [DIR]       default /var/cache/mod-fpm-replica/bookworm
set -euo pipefail
root="${1:-/var/cache/mod-fpm-replica/bookworm}"
# What the tests install: the Dockerfile's build stage (debian/build-deb.sh's
# build dependencies), its demo stage, and the package's own dependencies
# (libcurl4 comes with libcurl4-openssl-dev, apache2-bin with apache2).
PACKAGES="build-essential debhelper dpkg-dev fakeroot apache2-dev libcap-dev libcurl4-openssl-dev
          nlohmann-json3-dev cmake g++ catch2 apache2 php-fpm curl libcap2"
# What docs/operations.md's install line installs, as an operator runs it:
# with the packages they recommend (the guide's test follows it literally).
OPERATOR_PACKAGES="apache2 php-fpm curl"
marker="$root/.fpmr-clean-root"

PACKAGES="$(echo $PACKAGES)"   # one line, for the marker
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$PACKAGES; $OPERATOR_PACKAGES" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "clean-root: must run as root" >&2
    exit 1
fi
command -v debootstrap >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
}

# The mirror this machine's apt uses (deb822 or one-line sources).
mirror="$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list \
            2>/dev/null | grep -oE 'https?://[^ ]+' | grep -E '/debian/?$' | head -n 1 || true)"
mirror="${mirror:-http://deb.debian.org/debian}"

echo "clean-root: debootstrap bookworm from $mirror into $root"
rm -rf "$root"
mkdir -p "$(dirname "$root")"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -n 20 "$root.log" >&2
    exit 1
}
rm -f "$root/etc/apt/sources.list"
cat > "$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian*}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
cp /etc/resolv.conf "$root/etc/resolv.conf"
# Keep the downloaded .debs: the tests install from them.
rm -f "$root/etc/apt/apt.conf.d/docker-clean"
unshare --mount --propagation private sh -c "
    mount --rbind /dev '$root/dev' && mount -t proc proc '$root/proc' &&
    exec chroot '$root' sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends --download-only $PACKAGES &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --download-only $OPERATOR_PACKAGES'" \
    >>"$root.log" 2>&1 || {
    tail -n 20 "$root.log" >&2
    exit 1
}
echo "$PACKAGES; $OPERATOR_PACKAGES" > "$marker"
echo "clean-root: ready ($(du -sh "$root" | cut -f1))"
