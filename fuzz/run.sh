#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (a build directory of their own)
# and runs each one for a bounded time, one after the other on one core.
# Fails when any target finds a crash, a hang, a sanitizer report or a
# violated property; prints one line per target with its executions.
#
#   bash fuzz/run.sh                    # 20 s each (ctest's "fuzz" test: --seconds 6)
#   bash fuzz/run.sh --seconds 600      # a longer run
#   bash fuzz/run.sh --seconds 60 form_body helper_rules
#
# Seeds are read from fuzz/corpus/<target>/ (never written); what a run
# learns goes to <build-dir>/corpus/<target>/ and is reused by the next run
# in the same build directory. A crashing input lands in
# <build-dir>/artifacts/<target>/: copy it into fuzz/corpus/<target>/ as a
# regression seed once fixed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

seconds=20
build_dir="$here/../build/fuzz"
targets=()
while (($#)); do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --build-dir) build_dir="$2"; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        -*) echo "fuzz/run.sh: unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
((${#targets[@]})) || targets=(config_parse helper_rules form_body pool_status status_page supervisor_plan fcgi_reply fcgi_ping_client warmup)

cmake -S "$here" -B "$build_dir" -DCMAKE_CXX_COMPILER=clang++ \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir" -j2 >/dev/null

failed=0
for target in "${targets[@]}"; do
    binary="$build_dir/fuzz_$target"
    [ -x "$binary" ] || { echo "fuzz: $target: no such target" >&2; exit 2; }
    # The ping client reads the same FastCGI replies as the parser.
    dict="$here/dict/${target/fcgi_ping_client/fcgi_reply}.dict"
    corpus="$build_dir/corpus/$target"
    artifacts="$build_dir/artifacts/$target/"
    log="$build_dir/logs/$target.log"
    mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
    options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096
             -print_final_stats=1 -artifact_prefix="$artifacts")
    [ -f "$dict" ] && options+=(-dict="$dict")
    rc=0
    # The first corpus directory receives new inputs; the seeds stay as they are.
    "$binary" "${options[@]}" "$corpus" "$here/corpus/$target" >"$log" 2>&1 || rc=$?
    executions="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    if ((rc == 0)); then
        echo "fuzz: $target: ${executions:-0} executions in ${seconds} s, no crash"
    else
        failed=1
        echo "fuzz: $target: FAILED (exit $rc) after ${executions:-?} executions; log $log"
        grep -E 'ERROR: |runtime error|property violated|Test unit written|SUMMARY' "$log" | head -n 20 || true
    fi
done
exit "$failed"
