"""Restart benchmark: the same load (8 clients on a fast PHP script, one
client on a 5 s script) through one httpd, while php-fpm is restarted three
ways, side by side in one run:

  stock-usr2     one php-fpm behind SetHandler proxy:unix, `kill -USR2` (reload)
  stock-restart  the same php-fpm stopped (SIGQUIT) and started again
  module         two replicas supervised by mod_fpm_replica, `apachectl graceful`

For each: failed requests, and p99 / max latency of the fast requests in the
window from the restart to 6 s after it.

Run it through bench/restart.sh, which installs and builds first."""

import os
import shutil
import signal
import time

import benchlib
from benchlib import harness

DURATION = 9
RESTART_AT = 2.0


def vhost(httpd, stock_sock):
    docroot = f"{httpd.root}/htdocs"
    lines = [f"DocumentRoot {docroot}",
             f"<Directory {docroot}>", "    Require all granted", "</Directory>",
             f"Alias /stock {docroot}",
             f"FpmReplica a unix:{httpd.sock('a')} status=unix:{httpd.sock('a')}.status",
             f"FpmReplica b unix:{httpd.sock('b')} status=unix:{httpd.sock('b')}.status",
             f'FpmReplicaSpawn "{harness.php_fpm_binary()} --nodaemonize --fpm-config '
             f'{harness.FPM_SUPERVISED_CONF}"',
             "FpmReplicaDrainTimeout 10s",
             '<FilesMatch "\\.php$">', "    SetHandler fpm-replica", "</FilesMatch>",
             "<Location /stock>", f'    SetHandler "proxy:unix:{stock_sock}|fcgi://stock"',
             "</Location>",
             '<Location "/fpm-replica-status">', "    SetHandler fpm-replica-status",
             "</Location>"]
    return "\n".join(lines)


def measure(httpd, prefix, restart):
    run = httpd.load([(f"{prefix}/fast.php", 8), (f"{prefix}/slow.php?ms=5000", 1)],
                     duration=DURATION, timeout=60)
    time.sleep(RESTART_AT)
    at = time.time()
    restart()
    result = run.wait()
    fast = sorted((r["end"] - r["start"]) * 1000 for r in result.records
                  if "fast" in r["path"] and at <= r["start"] <= at + 6)
    failed = len(result.failures())
    p99 = fast[int(0.99 * (len(fast) - 1))] if fast else float("nan")
    return {"requests": len(result.records), "failed": failed, "p99": p99,
            "max": fast[-1] if fast else float("nan")}


def main():
    root = benchlib.server_root("restart-")
    httpd = harness.Httpd(root)
    rows = {}
    try:
        stock = httpd.start_fpm("stock", workers=16)
        httpd.write_config(vhost(httpd, httpd.sock("stock")))
        httpd.start()
        harness.wait_for(lambda: all(r["state"] == "ready" for r in httpd.status()["replicas"]),
                         15, what="module replicas ready")
        rows["stock-usr2"] = measure(httpd, "/stock", lambda: os.kill(stock.pid, signal.SIGUSR2))

        def stop_start():
            stock.proc.send_signal(signal.SIGQUIT)
            stock.proc.wait(timeout=30)
            stock.start()
        time.sleep(2)
        rows["stock-restart"] = measure(httpd, "/stock", stop_start)
        time.sleep(2)
        rows["module"] = measure(httpd, "", httpd.graceful)
    finally:
        httpd.cleanup()
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n{'scenario':14s} {'requests':>9s} {'failed':>7s} {'p99 ms':>8s} {'max ms':>8s}")
    for name, r in rows.items():
        print(f"{name:14s} {r['requests']:9d} {r['failed']:7d} {r['p99']:8.0f} {r['max']:8.0f}")


if __name__ == "__main__":
    main()
