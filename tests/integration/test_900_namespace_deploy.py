"""Deploy = flip the symlink, in namespace mode with supervised replicas: the
supervisor brings up replicas on the new release (one extra master at a
time), new requests wait for the first and go only to replicas of their own
release, old replicas drain and stop; a release whose replicas cannot start
leaves the working one serving."""

import os
import re
import threading
import time

import pytest

import harness
from releases import flip, make_release
from test_600_helper import setup  # noqa: F401 (fixture)
from test_800_supervision import all_ready, fpm_masters_of, supervisor_pid
from vhosts import namespace_vhost


def namespace_config(httpd, setup):  # noqa: F811
    # Where the broken-release test puts a release no replica may serve.
    extra = f"<Directory {httpd.root}/elsewhere>\n    Require all granted\n</Directory>"
    return namespace_vhost(httpd, setup["app"], setup["live"], setup["conf"], extra=extra)


def release_of(text):
    m = re.search(r"release=(\w+) inc=(\w+)", text)
    return m.group(1) if m and m.group(1) == m.group(2) else None


def serving(httpd, release_dir):
    reps = all_ready(httpd)
    return reps if reps and all(r["release"] == release_dir and r["restarts"] >= 1 for r in reps) else None


@pytest.fixture
def deployed(httpd, setup):  # noqa: F811
    flip(setup["app"], "releases/r1")
    httpd.write_config(namespace_config(httpd, setup))
    httpd.start()
    reps = harness.wait_for(lambda: all_ready(httpd), 15, what="replicas ready on r1")
    assert {r["release"] for r in reps} == {setup["r1"]}
    assert httpd.status()["mode"] == "namespace"
    return setup


def test_flip_under_load_zero_failed_stale_torn(httpd, deployed):
    setup = deployed
    sup = supervisor_pid(httpd)
    run = httpd.load([("/version.php", 8), ("/static.txt", 4), ("/slow.php?ms=1500", 2)], duration=8)
    time.sleep(2)
    flip(setup["app"], "releases/r2")
    flipped_at = time.time()
    harness.wait_for(lambda: serving(httpd, setup["r2"]), 30, what="every replica on r2")
    result = run.wait()
    failed = result.failures()
    stale = [r for r in result.records if r["start"] > flipped_at and r["status"] == 200 and
             "release=r1" in r["body"]]
    torn = [r for r in result.records if r["path"] == "/version.php" and r["status"] == 200 and
            release_of(r["body"]) is None]
    after = [r for r in result.records if r["start"] > flipped_at + 0.05]
    print(f"{result.summary()}: failed {len(failed)}, stale {len(stale)}, torn {len(torn)}")
    assert (len(failed), len(stale), len(torn)) == (0, 0, 0), (failed[:3], stale[:3], torn[:3])
    assert any("release=r2" in r["body"] for r in after)
    assert len(fpm_masters_of(sup)) == 2
    assert os.listdir(setup["live"]) == []


def test_broken_release_keeps_the_working_one_serving(httpd, deployed):
    setup = deployed
    httpd.expect_log(r"FPMR00037", r"FPMR00043", r"FPMR00042")
    # A release outside every release-root of the helper's configuration:
    # Apache can serve it, but no replica can be started on it.
    outside = os.path.join(httpd.root, "elsewhere")
    rogue = make_release(outside, "r9")
    slow_result = []
    slow = threading.Thread(target=lambda: slow_result.append(httpd.get("/slow.php?ms=2500", timeout=30)))
    slow.start()
    time.sleep(0.3)
    flip(setup["app"], rogue)
    t0 = time.monotonic()
    r = httpd.get("/version.php", timeout=30)
    waited = time.monotonic() - t0
    slow.join()
    assert slow_result[0].status == 200, slow_result[0].text  # pinned to r1: finished on r1
    assert r.status == 503 and waited <= 20
    reps = httpd.status()["replicas"]
    assert {rep["release"] for rep in reps} == {setup["r1"]}
    assert all(rep["state"] == "ready" for rep in reps)
    # Flip back: r1 is served again at once.
    flip(setup["app"], "releases/r1")
    r = httpd.get("/version.php")
    assert r.status == 200 and release_of(r.text) == "r1"


def replaced_since(httpd, before_restarts, release_dir):
    reps = all_ready(httpd)
    if not reps or any(r["release"] != release_dir for r in reps):
        return None
    total = sum(r["restarts"] for r in reps)
    return reps if total >= before_restarts + len(reps) else None


def test_five_flips_and_five_graceful_restarts_under_load(httpd, deployed):
    # The long version is the opt-in soak (test_999: 100 of each).
    setup = deployed
    sup = supervisor_pid(httpd)
    run = httpd.load([("/version.php", 6), ("/static.txt", 2), ("/slow.php?ms=1500", 2)],
                     duration=90)
    releases = [setup["r1"], setup["r2"]]
    current = 0
    ops = []
    try:
        for i in range(5):
            before = sum(r["restarts"] for r in httpd.status()["replicas"])
            current = 1 - current
            flip(setup["app"], releases[current])
            ops.append(("flip", time.time()))
            harness.wait_for(lambda: replaced_since(httpd, before, releases[current]), 30,
                             what=f"flip {i + 1} rolled out")
            before = sum(r["restarts"] for r in httpd.status()["replicas"])
            httpd.graceful()
            ops.append(("graceful", time.time()))
            harness.wait_for(lambda: replaced_since(httpd, before, releases[current]), 30,
                             what=f"graceful {i + 1} rolled out")
    finally:
        run.stop()  # the load ends once the ten operations are done
    result = run.wait()
    failed = result.failures()
    print(f"{len(ops)} operations; {result.summary()}; failed {len(failed)}")
    assert len(ops) == 10
    assert failed == [], failed[:5]
    assert len(result.records) > 1000
    assert len(fpm_masters_of(sup)) == 2


def test_cli_deploy_rollback_and_a_broken_release(httpd, deployed):
    from test_970_cli import cli
    setup = deployed
    httpd.expect_log(r"FPMR00037", r"FPMR00043", r"FPMR00047", r"FPMR00048")
    run = httpd.load([("/version.php", 4), ("/slow.php?ms=1500", 1)], duration=60)
    try:
        current = os.path.join(setup["app"], "current")
        assert not os.path.isabs(os.readlink(current))  # flip() writes it relative
        # No flip seen since httpd started, no .previous: nothing to go back to.
        assert httpd.status()["previous_release"] is None
        r = cli(httpd, "rollback")
        assert r.returncode == 1 and "no previous release" in r.stderr, r.stdout + r.stderr
        r = cli(httpd, "deploy", setup["r2"])
        assert r.returncode == 0, r.stdout + r.stderr
        assert os.path.realpath(current) == setup["r2"]
        # The links keep the form they had: relative, as deploy tools write them.
        assert os.readlink(current) == "releases/r2"
        assert os.readlink(current + ".previous") == "releases/r1"
        assert {x["release"] for x in httpd.status()["replicas"]} == {setup["r2"]}
        # A release that is not one of this application's (outside the
        # releases directory): refused before any master starts, and the
        # symlink is left alone.
        rogue = make_release(os.path.join(httpd.root, "elsewhere"), "r9")
        r = cli(httpd, "deploy", rogue)
        assert r.returncode == 1 and "is not a directory in " + os.path.join(
            setup["app"], "releases") in r.stderr, r.stdout + r.stderr
        assert os.path.realpath(os.path.join(setup["app"], "current")) == setup["r2"]
        r = cli(httpd, "rollback")
        assert r.returncode == 0, r.stdout + r.stderr
        assert os.path.realpath(current) == setup["r1"]
        # A plain flip, not made by the CLI (so .previous, r2, is stale):
        # the module saw it, and rollback goes back to the release before it.
        flip(setup["app"], "releases/r2")
        harness.wait_for(lambda: {x["release"] for x in httpd.status()["replicas"]} == {setup["r2"]},
                         30, what="r2 served after a plain flip")
        assert httpd.status()["previous_release"] == setup["r1"]
        r = cli(httpd, "rollback")
        assert r.returncode == 0, r.stdout + r.stderr
        assert os.path.realpath(current) == setup["r1"]
    finally:
        run.stop()
    result = run.wait()
    assert result.failures() == [], result.failures()[:3]
