#!/usr/bin/env bash
# Runs bench/rollout.py after installing and building (Debian 12, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh >/dev/null
FPMR_SOURCE_DIR="$PWD" FPMR_BUILD_DIR="$PWD/build" exec /usr/bin/python3 bench/rollout.py "$@"
