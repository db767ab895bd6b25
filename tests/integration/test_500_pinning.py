"""Release pinning: every request is served from exactly one release, the one
the release symlink named when it started, for static files and PHP alike."""

import os
import re
import time

import pytest

import harness
from releases import flip, make_release
from vhosts import pinned_vhost


@pytest.fixture
def app(httpd):
    root = os.path.join(httpd.root, "app")
    r1 = make_release(root, "r1")
    r2 = make_release(root, "r2")
    flip(root, "releases/r1")
    return {"root": root, "r1": r1, "r2": r2}


def start(httpd, app, extra=""):
    httpd.write_config(pinned_vhost(httpd, app["root"], extra))
    httpd.start_fpm("a")
    httpd.start_fpm("b")
    httpd.start()


def release_of(text):
    m = re.search(r"release=(\w+)", text)
    return m.group(1) if m else None


def self_consistent(text):
    """A version.php answer whose script, include, DOCUMENT_ROOT and
    SCRIPT_FILENAME all name one release."""
    m = re.search(r"release=(\w+) inc=(\w+) docroot=\{([^}]*)\} script=\{([^}]*)\}", text)
    if not m:
        return False
    rid, inc, docroot, script = m.groups()
    return inc == rid and f"/releases/{rid}/" in docroot + "/" and f"/releases/{rid}/" in script


def test_document_root_outside_the_release_is_refused(httpd, app):
    httpd.write_config(f"DocumentRoot {httpd.root}/htdocs\nFpmReplicaRelease {app['root']}/current\n"
                       f"FpmReplica a unix:{httpd.sock('a')}\nFpmReplica b unix:{httpd.sock('b')}")
    r = httpd.configtest()
    assert r.returncode != 0
    lines = [l for l in r.stderr.splitlines() if "FPMR00022" in l]
    assert len(lines) == 1, r.stderr
    assert (f"FpmReplicaRelease: DocumentRoot '{httpd.root}/htdocs' of app.test:{httpd.port} "
            f"is neither the release symlink '{app['root']}/current' nor under it") in lines[0]


def test_bad_release_directives_are_refused(httpd, app):
    for line, message in [
        ("FpmReplicaRelease current", "FpmReplicaRelease: 'current' must be an absolute path"),
        ("FpmReplicaRelease /srv/../etc", "FpmReplicaRelease: '/srv/../etc' must be an absolute path"),
        ("FpmReplicaResolveInterval 5h", "FpmReplicaResolveInterval: duration '5h' has an unknown unit"),
    ]:
        httpd.write_config(f"DocumentRoot {app['root']}/current/public\n{line}")
        r = httpd.configtest()
        assert r.returncode != 0 and message in r.stderr, r.stderr


def test_php_and_static_follow_the_symlink_at_once(httpd, app):
    start(httpd, app)
    r = httpd.get("/version.php")
    assert r.status == 200 and self_consistent(r.text), r.text
    assert f"docroot={{{app['r1']}/public}}" in r.text
    assert f"script={{{app['r1']}/public/version.php}}" in r.text
    assert httpd.get("/static.txt").text == "static release=r1\n"
    assert httpd.status()["release"] == app["r1"]

    flip(app["root"], "releases/r2")
    r = httpd.get("/version.php")
    assert release_of(r.text) == "r2" and self_consistent(r.text), r.text
    assert httpd.get("/static.txt").text == "static release=r2\n"
    status = httpd.status()
    assert status["release"] == app["r2"]
    assert all(rep["release"] == app["r2"] for rep in status["replicas"])


def test_directory_index_front_controller_path_info_and_alias(httpd, app):
    shared = os.path.join(httpd.root, "shared")
    os.makedirs(shared)
    with open(os.path.join(shared, "logo.txt"), "w") as f:
        f.write("shared asset\n")
    start(httpd, app, extra=f"Alias /shared {shared}\n<Directory {shared}>\nRequire all granted\n</Directory>")
    assert httpd.get("/").text == "index release=r1 uri={/}\n"
    assert httpd.get("/blog/post/7").text == "index release=r1 uri={/blog/post/7}\n"
    r = httpd.get("/version.php/extra/path")
    assert r.status == 200 and "path_info=/extra/path" in r.text and self_consistent(r.text), r.text
    assert httpd.get("/shared/logo.txt").text == "shared asset\n"
    flip(app["root"], "releases/r2")
    assert httpd.get("/blog/post/7").text == "index release=r2 uri={/blog/post/7}\n"
    assert httpd.get("/").text == "index release=r2 uri={/}\n"


def test_dangling_symlink_gives_503_logged_once_per_interval_and_recovers(httpd, app):
    start(httpd, app)
    httpd.expect_log(r"FPMR00023")
    flip(app["root"], "releases/missing")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 2.0:
        assert httpd.get("/version.php").status == 503
        assert httpd.get("/static.txt").status == 503
    elapsed = time.monotonic() - t0
    status = httpd.status()   # the status handler still answers
    assert status["release"] is None
    lines = [l for l in httpd.read_log().splitlines() if "FPMR00023" in l]
    # Once per second for the whole instance (a clock in shared memory), not
    # once per request or per child process.
    assert 1 <= len(lines) <= int(elapsed) + 1, lines
    assert "is dangling" in lines[0] and "releases/missing" in lines[0]

    # A target that is not a directory.
    with open(os.path.join(app["root"], "releases", "afile"), "w") as f:
        f.write("x")
    flip(app["root"], "releases/afile")
    assert httpd.get("/version.php").status == 503

    flip(app["root"], "releases/r2")
    r = httpd.get("/version.php")
    assert r.status == 200 and release_of(r.text) == "r2"


def test_resolve_interval_reuses_the_target_for_a_while(httpd, app):
    start(httpd, app, extra="FpmReplicaResolveInterval 2s")
    assert release_of(httpd.get("/version.php").text) == "r1"
    flip(app["root"], "releases/r2")
    flipped = time.monotonic()
    harness.wait_for(lambda: all(release_of(httpd.get("/version.php").text) == "r2"
                                 for _ in range(8)), 5, what="the new release after the interval")
    assert time.monotonic() - flipped <= 3.0


def stale_and_torn(result, flipped_at, old):
    stale, torn = [], []
    for rec in result.records:
        if rec["status"] != 200:
            continue
        rid = release_of(rec["body"])
        if rec["path"].endswith(".php") and not self_consistent(rec["body"]):
            torn.append(rec)
        if rec["start"] > flipped_at and rid == old:
            stale.append(rec)
    return stale, torn


def test_atomic_flip_under_load(httpd, app):
    start(httpd, app)
    httpd.get("/version.php")
    run = httpd.load([("/version.php", 8), ("/static.txt", 4)], duration=4)
    time.sleep(1.5)
    flip(app["root"], "releases/r2")
    flipped_at = time.time()
    result = run.wait()
    stale, torn = stale_and_torn(result, flipped_at, "r1")
    failed = result.failures()
    after = [r for r in result.records if r["start"] > flipped_at]
    before = [r for r in result.records if r["end"] < flipped_at]
    print(f"{result.summary()}: failed {len(failed)}, stale {len(stale)}, torn {len(torn)}")
    assert (len(failed), len(stale), len(torn)) == (0, 0, 0), (failed[:3], stale[:3], torn[:3])
    assert len(before) > 100 and len(after) > 100
    assert {release_of(r["body"]) for r in before} == {"r1"}
    assert {release_of(r["body"]) for r in after} == {"r2"}


def test_flip_every_10ms_under_64_clients(httpd, app):
    start(httpd, app)
    run = httpd.load([("/version.php", 48), ("/static.txt", 16)], duration=5)
    deadline = time.monotonic() + 4.5
    flips = 0
    while time.monotonic() < deadline:
        flip(app["root"], "releases/r2" if flips % 2 == 0 else "releases/r1")
        flips += 1
        time.sleep(0.01)
    result = run.wait()
    php = [r for r in result.records if r["path"] == "/version.php"]
    static = [r for r in result.records if r["path"] == "/static.txt"]
    bad = [r for r in php if r["status"] != 200 or not self_consistent(r["body"])]
    bad += [r for r in static if r["status"] != 200 or release_of(r["body"]) not in ("r1", "r2")]
    seen = {release_of(r["body"]) for r in php}
    print(f"{flips} flips; {result.summary()}; releases seen {seen}")
    assert flips > 200
    assert bad == [], bad[:5]
    assert seen == {"r1", "r2"}
    assert httpd.get("/version.php").status == 200
