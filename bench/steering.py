"""Steering benchmark: PHP hello world through mod_fpm_replica, through a plain
mod_proxy_balancer (lbmethod=bybusyness) over the same two replicas, and through
a single SetHandler proxy:unix socket, in one httpd, in one run, with wrk on
loopback. Rounds alternate so machine noise hits every variant alike; the
figures to compare are the ratios of the medians.

Run it through bench/steering.sh, which installs and builds first."""

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


def vhost(httpd):
    a, b = httpd.sock("a"), httpd.sock("b")
    docroot = f"{httpd.root}/htdocs"
    return f"""
DocumentRoot {docroot}
<Directory {docroot}>
    Require all granted
</Directory>
Alias /module {docroot}
Alias /balancer {docroot}
Alias /single {docroot}
FpmReplica a unix:{a}
FpmReplica b unix:{b}
<Proxy balancer://plain>
    BalancerMember unix:{a}|fcgi://plain-a/
    BalancerMember unix:{b}|fcgi://plain-b/
    ProxySet lbmethod=bybusyness
</Proxy>
<Location /module>
    SetHandler fpm-replica
</Location>
<Location /balancer>
    SetHandler proxy:balancer://plain
</Location>
<Location /single>
    SetHandler "proxy:unix:{a}|fcgi://single/"
</Location>
"""


def wrk(url):
    out = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", url],
                         capture_output=True, text=True, timeout=SECONDS + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if errors or socket_errors:
        print(f"wrk saw errors for {url}:\n{out}")
    return rps


def main():
    os.makedirs("/tmp/fpmr-bench", exist_ok=True)
    os.chmod("/tmp/fpmr-bench", 0o755)
    root = tempfile.mkdtemp(prefix="steering-", dir="/tmp/fpmr-bench")
    os.chmod(root, 0o755)
    shutil.copytree(harness.PHP_DIR, os.path.join(root, "htdocs"), dirs_exist_ok=True)
    httpd = harness.Httpd(root)
    variants = {"module": "/module/fast.php", "balancer": "/balancer/fast.php",
                "single": "/single/fast.php"}
    results = {name: [] for name in variants}
    try:
        httpd.write_config(vhost(httpd))
        httpd.start_fpm("a", workers=8)
        httpd.start_fpm("b", workers=8)
        httpd.start()
        for path in variants.values():   # warm up opcache and connections
            wrk(httpd.url(path))
        names = list(variants)
        for rnd in range(ROUNDS):
            # Rotate the order each round so no variant always runs first.
            for name in names[rnd % len(names):] + names[:rnd % len(names)]:
                results[name].append(wrk(httpd.url(variants[name])))
            print(f"round {rnd + 1}: " + ", ".join(f"{n} {results[n][-1]:.0f}/s" for n in variants))
    finally:
        httpd.cleanup()
        shutil.rmtree(root, ignore_errors=True)
    med = {name: statistics.median(v) for name, v in results.items()}
    print(f"\nmedian req/s over {ROUNDS} rounds of {SECONDS}s, wrk -t2 -c{CONNECTIONS}:")
    for name in variants:
        print(f"  {name:9s} {med[name]:9.0f}")
    print(f"ratio module/balancer (bybusyness, same two replicas): "
          f"{med['module'] / med['balancer']:.3f}")
    print(f"ratio module/single socket:                           "
          f"{med['module'] / med['single']:.3f}")


if __name__ == "__main__":
    main()
