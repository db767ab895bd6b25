#!/usr/bin/env bash
# Steering throughput: module vs plain bybusyness balancer vs one socket.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh >/dev/null
FPMR_SOURCE_DIR="$PWD" FPMR_BUILD_DIR="$PWD/build" exec /usr/bin/python3 bench/steering.py "$@"
