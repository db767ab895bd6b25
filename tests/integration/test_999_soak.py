"""The soak (opt-in: `bash tests/soak.sh`, or FPMR_SOAK=1; docs/testing.md):
100 deploys and 100 graceful restarts, in namespace mode, under load with
slow requests in flight. Zero failed; at the end nothing leaked: shared
memory records, descriptors of the httpd parent and of the supervisor,
php-fpm masters, mounts; the memory of the parent and the supervisor flat.
FPMR_SOAK_ROUNDS sets the number of deploy + restart rounds (default 100)."""

import os
import time

import pytest

import harness
from releases import make_release
from test_600_helper import setup  # noqa: F401 (fixture)
from test_800_supervision import fpm_masters_of, replicas_serve, supervisor_pid
from test_970_cli import cli
from vhosts import namespace_vhost

pytestmark = pytest.mark.skipif(os.environ.get("FPMR_SOAK") != "1",
                                reason="the soak is opt-in: bash tests/soak.sh")
ROUNDS = int(os.environ.get("FPMR_SOAK_ROUNDS", "100"))


def fd_count(pid):
    """The fewest descriptors over a second: the supervisor opens and closes
    a ping socket per health check, a leak stays."""
    fewest = None
    for _ in range(20):
        n = len(os.listdir(f"/proc/{pid}/fd"))
        fewest = n if fewest is None else min(fewest, n)
        time.sleep(0.05)
    return fewest


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def host_mounts():
    with open("/proc/self/mountinfo") as f:
        return len(f.read().splitlines())


def snapshot(httpd):
    sup = supervisor_pid(httpd)
    doc = httpd.status()
    return {"parent_fds": fd_count(httpd.main_pid), "supervisor_fds": fd_count(sup),
            "parent_rss_kib": rss_kib(httpd.main_pid), "supervisor_rss_kib": rss_kib(sup),
            "masters": len(fpm_masters_of(sup)), "mounts": host_mounts(),
            "shared": doc["shared_memory"], "supervisor": sup}


def test_soak_deploys_and_graceful_restarts_under_load(httpd, setup):  # noqa: F811
    from releases import flip
    flip(setup["app"], "releases/r1")
    httpd.write_config(namespace_vhost(httpd, setup["app"], setup["live"], setup["conf"], drain="30s"))
    httpd.start()
    releases = [setup["r1"], setup["r2"], make_release(setup["app"], "r3")]
    harness.wait_for(lambda: replicas_serve(httpd, releases[0], "namespace"), 20, what="r1 served")
    run = httpd.load([("/version.php", 6), ("/static.txt", 2), ("/slow.php?ms=1500", 2)],
                     duration=ROUNDS * 20 + 60)
    started = time.time()
    try:
        # One round first, so that every record, descriptor and page the
        # steady state needs exists before the baseline.
        deployed = 0

        def deploy_next():
            nonlocal deployed
            deployed += 1
            target = releases[deployed % len(releases)]
            r = cli(httpd, "deploy", target)
            assert r.returncode == 0, r.stdout + r.stderr
            return target

        def graceful(target):
            before = {rep["pid"] for rep in httpd.status()["replicas"]}
            httpd.graceful()
            harness.wait_for(lambda: replicas_serve(httpd, target, "namespace", not_pids=before), 60,
                             what="every replica replaced after the graceful restart")

        def settled():
            # The replaced masters drain their slow requests, then exit.
            sup = supervisor_pid(httpd)
            harness.wait_for(lambda: len(fpm_masters_of(sup)) == 2, 60, what="only the two serving masters")
            return snapshot(httpd)

        graceful(deploy_next())
        baseline = settled()
        for i in range(ROUNDS):
            graceful(deploy_next())
            if (i + 1) % 10 == 0:
                print(f"round {i + 1}: {snapshot(httpd)}", flush=True)
        end = settled()
    finally:
        run.stop()
    result = run.wait()
    elapsed = time.time() - started
    failed = result.failures()
    print(f"soak: {ROUNDS + 1} deploys, {ROUNDS + 1} graceful restarts in {elapsed:.0f}s: "
          f"{result.summary()}, failed {len(failed)}")
    print(f"soak: baseline {baseline}")
    print(f"soak: end      {end}")
    assert failed == [], failed[:5]
    assert end["supervisor"] == baseline["supervisor"]   # never restarted, never crashed
    assert end["masters"] == baseline["masters"] == 2
    assert end["mounts"] == baseline["mounts"]
    assert end["parent_fds"] == baseline["parent_fds"]
    assert end["supervisor_fds"] == baseline["supervisor_fds"]
    assert end["shared"]["members"] == baseline["shared"]["members"]
    assert end["shared"]["release_symlinks"] == baseline["shared"]["release_symlinks"]
    # Rows belong to live children only (the parent frees an exited child's).
    assert end["shared"]["child_rows"] <= baseline["shared"]["child_rows"] + 2
    # Flat: what a leak per round would add up to over 100 rounds is far more.
    assert end["parent_rss_kib"] - baseline["parent_rss_kib"] < 4096, (baseline, end)
    assert end["supervisor_rss_kib"] - baseline["supervisor_rss_kib"] < 4096, (baseline, end)
