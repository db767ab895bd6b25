"""Rollout benchmark: phpMyAdmin (Debian's package, several hundred PHP
files) under steady load, 10 clients on its login page beside a stylesheet,
a release marker and a seconds-long request; then, in each mode, a plain
symlink flip to a release never served, `fpm-replica deploy` to another,
`apachectl graceful` and a replica's crash (SIGKILL of its process group);
side by side, in the same run, stock php-fpm (one pool, as many workers as
the two replicas) reloaded with `kill -USR2`. For each moment: page requests
that started in the 2 s after it (a deploy: until 1 s after it returned),
a control moment at which nothing happens (the noise of the figures),
their p50 / p99 / max and the ratios to the steady state of the same run
(tests/integration/rollout.py), and failed requests. Both modes run twice:
with warm-up (the default) and with `FpmReplicaWarmup off`, to show what it
buys.

Run it through bench/rollout.sh, which installs and builds first.
BENCH_ROLLOUT_VARIANTS overrides the variants
("stock,realpath,namespace,realpath-cold,namespace-cold")."""

import os
import shutil

import benchlib
from benchlib import harness
import rollout

VARIANTS = os.environ.get("BENCH_ROLLOUT_VARIANTS",
                          "stock,realpath,namespace,realpath-cold,namespace-cold").split(",")
CONTROL = ("nothing (control)", "nothing", None)
MOMENTS = {
    "stock": [CONTROL, ("kill -USR2", "reload_stock", None)],
    "realpath": [CONTROL, ("symlink flip", "flip_to", "pma-2"), ("fpm-replica deploy", "deploy", "pma-3"),
                 ("apachectl graceful", "graceful", "pma-3"), ("replica crash", "crash", "pma-3")],
}
MOMENTS["namespace"] = MOMENTS["realpath"]


def main():
    tables = []
    for variant in VARIANTS:
        mode = variant.removesuffix("-cold")
        root = benchlib.server_root(f"rollout-{variant}-")
        httpd = harness.Httpd(root)
        try:
            _site, result, rows = rollout.run(httpd, mode, MOMENTS[mode],
                                              warmup=not variant.endswith("-cold"))
        finally:
            httpd.cleanup()
            shutil.rmtree(root, ignore_errors=True)
        failed = len(result.failures())
        table = rollout.format_rows(variant, rows) + f"\n{variant}: {result.summary()}, {failed} failed"
        print(table, flush=True)
        tables.append(table)
    print("\n" + "\n\n".join(tables))


if __name__ == "__main__":
    main()
