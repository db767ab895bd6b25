#!/usr/bin/env bash
# Runs every test: Catch2 unit tests of the core, then the integration tests
# (real httpd, real php-fpm, real HTTP on 127.0.0.1), through ctest.
# On a fresh Debian 12 machine as root it installs and builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
cd build
ctest --output-on-failure --timeout 1500 "$@"
