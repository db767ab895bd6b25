#!/usr/bin/env bash
# Installs what mod_fpm_replica needs on Debian 12 (as root) and builds it
# into build/. Idempotent: packages already present are not fetched again.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(apache2 apache2-dev libcap-dev libcap2-bin libcurl4-openssl-dev nlohmann-json3-dev catch2
          php-fpm libfcgi-bin wrk curl prometheus
          cmake g++ make python3 python3-pytest clang libclang-rt-14-dev
          debhelper dpkg-dev fakeroot lintian debootstrap iproute2
          chromium chromium-driver
          capistrano git ansible haproxy)
# The real application tests deploy Adminer and phpMyAdmin from Debian's
# packages. Installed second, once php-fpm is in place, so that apt satisfies
# their "php" dependencies with php-fpm and not with libapache2-mod-php (which
# would switch the system's apache2 to the prefork MPM).
LATE_PACKAGES=(adminer phpmyadmin)

missing_of() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
    done
}
mapfile -t missing < <(missing_of "${PACKAGES[@]}" "${LATE_PACKAGES[@]}")
if ((${#missing[@]})); then
    if [ "$(id -u)" != 0 ]; then
        echo "setup: missing packages ${missing[*]}; run as root to install them" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # The prometheus package is here for promtool only: keep its postinst
    # from starting a Prometheus server (policy-rc.d: "do not start services").
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    mapfile -t first < <(missing_of "${PACKAGES[@]}")
    if ((${#first[@]})); then
        apt-get install -y -q --no-install-recommends "${first[@]}"
    fi
    # phpMyAdmin's debconf questions, answered: no database set-up through
    # dbconfig-common (its login page needs none), no web server changed.
    printf '%s\n' 'phpmyadmin phpmyadmin/dbconfig-install boolean false' \
        'phpmyadmin phpmyadmin/reconfigure-webserver multiselect' | debconf-set-selections
    apt-get install -y -q --no-install-recommends "${LATE_PACKAGES[@]}"
fi

# The clean Debian 12 root the package tests install into (downloaded once;
# needs mounts, so an unprivileged container build skips it with
# FPMR_SKIP_CLEAN_ROOT=1 and tests/run.sh prepares it when the tests run).
if [ -z "${FPMR_SKIP_CLEAN_ROOT:-}" ] && [ "$(id -u)" = 0 ]; then
    bash tests/clean-root.sh
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
