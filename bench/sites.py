"""Scaling benchmark: one httpd with 50, 150 and 300 sites (name-based
vhosts, two supervised replicas each, php-fpm `pm = ondemand`). For each
count, in a fresh httpd: seconds from `httpd -k start` until every replica of
every site is ready, the PSS of httpd and its masters, and seconds from
`apachectl graceful` until every replica of every site has been replaced.

Run it through bench/sites.sh, which installs and builds first. BENCH_SITES
overrides the counts ("50,150,300")."""

import os
import shutil
import time

import benchlib
from benchlib import harness
import many_sites

COUNTS = [int(n) for n in os.environ.get("BENCH_SITES", "50,150,300").split(",")]


def measure(count):
    root = benchlib.server_root(f"sites-{count}-")
    httpd = harness.Httpd(root)
    shutil.copytree(harness.PHP_DIR, os.path.join(root, "htdocs"), dirs_exist_ok=True)
    try:
        httpd.write_config(many_sites.sites_config(httpd, count), own_vhost=False)
        began = time.monotonic()
        httpd.start(timeout=60)
        _, before = many_sites.wait_all_ready(httpd, count, 600)
        started = time.monotonic() - began
        bad = many_sites.answer_on_every_site(httpd, count)
        masters = [pid for pids in before.values() for pid in pids.values()]
        workers = []
        for master in masters:
            workers += harness.children_of(master)
        httpd_tree = [httpd.main_pid] + harness.children_of(httpd.main_pid)
        pss_mib = many_sites.pss_kib(set(httpd_tree + masters + workers)) / 1024
        began = time.monotonic()
        httpd.graceful(timeout=120)
        many_sites.wait_all_replaced(httpd, count, before, 600)
        rolled = time.monotonic() - began
        bad += many_sites.answer_on_every_site(httpd, count)
        return started, pss_mib, rolled, len(bad)
    finally:
        httpd.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def main():
    rows = []
    for count in COUNTS:
        started, pss, rolled, bad = measure(count)
        rows.append((count, started, pss, rolled, bad))
        print(f"{count} sites: ready in {started:.1f} s, {pss:.0f} MiB PSS, graceful roll "
              f"{rolled:.1f} s, {bad} sites not answering", flush=True)
    print()
    print("| sites | masters | start until all ready | PSS | graceful roll | per replica |")
    print("|---|---|---|---|---|---|")
    for count, started, pss, rolled, bad in rows:
        print(f"| {count} | {2 * count} | {started:.1f} s | {pss:.0f} MiB | {rolled:.1f} s | "
              f"{1000 * rolled / (2 * count):.0f} ms |")
    if any(row[4] for row in rows):
        raise SystemExit("some sites did not answer")


if __name__ == "__main__":
    main()
