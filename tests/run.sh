#!/usr/bin/env bash
# Runs every test: Catch2 unit tests of the core, then the integration tests
# (real httpd, real php-fpm, real HTTP on 127.0.0.1), through ctest.
# On a fresh Debian 12 machine as root it installs and builds first.
#
#   bash tests/run.sh            every test (what .ci/run runs)
#   bash tests/run.sh --soak     the opt-in soak only (test_999_soak.py: 100
#                                deploys and 100 graceful restarts under load,
#                                about 8 minutes; FPMR_SOAK_ROUNDS=N for fewer)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
if [ "${1:-}" = "--soak" ]; then
    shift
    exec env FPMR_SOAK=1 FPMR_BUILD_DIR="$PWD/build" FPMR_SOURCE_DIR="$PWD" \
        timeout 3600 /usr/bin/python3 -m pytest -q -s -p no:cacheprovider \
        tests/integration/test_999_soak.py "$@"
fi
cd build
ctest --output-on-failure --timeout 1500 "$@"
