"""Shared pieces of the benchmarks: a throw-away server root, wrk on loopback,
and alternating rounds so machine noise hits every variant alike."""

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import harness  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))


def server_root(prefix):
    os.makedirs("/tmp/fpmr-bench", exist_ok=True)
    os.chmod("/tmp/fpmr-bench", 0o755)
    root = tempfile.mkdtemp(prefix=prefix, dir="/tmp/fpmr-bench")
    os.chmod(root, 0o755)
    shutil.copytree(harness.PHP_DIR, os.path.join(root, "htdocs"), dirs_exist_ok=True)
    return root


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree_cpu_seconds(parent_pid):
    """User + system CPU of a process and its live children (httpd's workers)."""
    total = 0
    for pid, fields in harness.proc_stats():
        if pid == parent_pid or int(fields[1]) == parent_pid:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def wrk(url, cpu_of=None, cpu_per_request=None):
    """Requests/s for `url`; with cpu_of (a pid), also appends the CPU
    microseconds that process tree spent per request to cpu_per_request."""
    before = process_tree_cpu_seconds(cpu_of) if cpu_of else 0
    out = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", url],
                         capture_output=True, text=True, timeout=SECONDS + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    if cpu_of:
        requests = int(re.search(r"(\d+) requests in", out).group(1))
        cpu_per_request.append(1e6 * (process_tree_cpu_seconds(cpu_of) - before) / requests)
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise RuntimeError(f"wrk got error responses from {url}:\n{out}")
    if "Socket errors" in out:
        print(f"  (wrk socket errors for {url}: {re.search(r'Socket errors: (.*)', out).group(1)})")
    return rps


def alternate(variants, httpd_pid):
    """variants: name -> url. Runs ROUNDS rounds, rotating the order each
    round. Returns (name -> median requests/s, name -> median httpd CPU
    microseconds per request); CPU per request is the steadier figure on a
    noisy machine, throughput the one users feel."""
    if not httpd_pid:
        raise RuntimeError("alternate() needs httpd's pid to measure its CPU")
    results = {name: [] for name in variants}
    cpu = {name: [] for name in variants}
    for url in variants.values():  # warm up opcache and connections
        wrk(url)
    names = list(variants)
    for rnd in range(ROUNDS):
        for name in names[rnd % len(names):] + names[:rnd % len(names)]:
            results[name].append(wrk(variants[name], httpd_pid, cpu[name]))
        print(f"round {rnd + 1}: " + ", ".join(f"{n} {results[n][-1]:.0f}/s" for n in names),
              flush=True)
    medians = {name: statistics.median(v) for name, v in results.items()}
    cpu_medians = {name: statistics.median(v) for name, v in cpu.items()}
    print(f"\nmedians over {ROUNDS} rounds of {SECONDS}s, wrk -t2 -c{CONNECTIONS}:")
    print(f"  {'variant':18s} {'req/s':>9s} {'httpd CPU us/req':>17s}")
    for name in names:
        print(f"  {name:18s} {medians[name]:9.0f} {cpu_medians[name]:17.1f}")
    return medians, cpu_medians
