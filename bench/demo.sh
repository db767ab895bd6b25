#!/usr/bin/env bash
# The README's demo command: installs and builds (Debian 12, as root), then
# runs httpd + mod_fpm_replica + two php-fpm replicas on loopback under load,
# kills one replica mid-run and prints the number of failed requests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
FPMR_SOURCE_DIR="$PWD" FPMR_BUILD_DIR="$PWD/build" exec /usr/bin/python3 bench/demo.py
