"""Warm-up before ready: at a graceful restart each replacement master
compiles the working set of the master it replaces (opcache's list, through
share/warmup.php) before it takes a request, and the status document and the
metrics show how many scripts and how long."""

import os
import shutil

import harness
from releases import flip, make_release
from test_760_warmup_script import fastcgi
from test_800_supervision import all_ready, spawn_vhost
from vhosts import pinned_vhost

WARMUP_SOURCE = os.path.join(harness.SOURCE_DIR, "share", "warmup.php")
# The test's scripts were written a moment ago: opcache keeps nothing
# younger than file_update_protection (2 s by default).
FRESH_FILES = "-d opcache.file_update_protection=0"


def install_warmup_script(httpd):
    script = os.path.join(httpd.root, "share", "warmup.php")
    os.makedirs(os.path.dirname(script))
    shutil.copy(WARMUP_SOURCE, script)
    os.chmod(script, 0o644)
    return script


def fpm_command():
    return (f"{harness.php_fpm_binary()} --nodaemonize --fpm-config {harness.FPM_SUPERVISED_CONF} "
            f"{FRESH_FILES}")


def test_a_replacement_compiles_the_working_set_before_it_is_ready(httpd):
    script = install_warmup_script(httpd)
    httpd.write_config(spawn_vhost(httpd, command=fpm_command()).add(f"FpmReplicaWarmup script={script}"))
    httpd.start()
    before = {r["name"]: r["pid"] for r in harness.wait_for(lambda: all_ready(httpd), 15,
                                                             what="replicas ready")}
    # First start: nothing cached anywhere yet (a replica that answered
    # after its sibling took the sibling's empty set).
    assert all(r["warmup"] is None or r["warmup"]["scripts"] == 0 for r in httpd.status()["replicas"])
    # Sequential requests alternate between the replicas: three of each
    # script give both masters both.
    for path in ["/fast.php"] * 3 + ["/index.php"] * 3:
        assert httpd.get(path).status == 200

    httpd.graceful()
    replaced = harness.wait_for(lambda: (lambda reps: reps if reps and all(
        r["pid"] not in before.values() for r in reps) else None)(all_ready(httpd)), 30,
        what="every replica replaced")
    for r in replaced:
        assert r["warmup"] is not None and r["warmup"]["scripts"] >= 2, r
        assert 0 <= r["warmup"]["seconds"] < 10, r
    # The new master of a has them cached without having served anything.
    status, _, body, _ = fastcgi(httpd.sock("a") + ".alt", script, "action=list")
    assert status == 200, body
    cached = body.decode().split()
    assert os.path.join(httpd.root, "htdocs", "fast.php") in cached, cached
    assert os.path.join(httpd.root, "htdocs", "index.php") in cached, cached
    metrics = httpd.get("/fpm-replica-status?format=prometheus").text
    assert 'fpm_replica_warmup_scripts{' in metrics, metrics
    assert "FPMR00177" not in httpd.read_log()


def test_realpath_prepare_compiles_the_new_release_before_the_flip(httpd):
    """Realpath mode: every master serves every release, so a prepare has the
    serving masters compile the new release's working set (what they cached
    of the current one, mapped to it); the flip then finds it cached."""
    script = install_warmup_script(httpd)
    app = os.path.join(httpd.root, "app")
    r1, r2 = make_release(app, "r1"), make_release(app, "r2")
    flip(app, "releases/r1")
    httpd.write_config(pinned_vhost(httpd, app, status=True).spawn(fpm_command())
                       .add(f"FpmReplicaWarmup script={script}"))
    httpd.start()
    harness.wait_for(lambda: all_ready(httpd), 15, what="replicas ready")
    for _ in range(4):
        assert httpd.get("/version.php").status == 200
    doc = httpd.status()
    r = httpd.post("/fpm-replica-status", {"action": "prepare", "release": r2},
                   headers={"X-Fpm-Replica-Nonce": doc["nonce"]})
    assert r.status == 200, r.text
    harness.wait_for(lambda: (httpd.status().get("prepared") or {}).get("state") == "ready", 15,
                     what="the preparation ready")
    for name in ("a", "b"):
        status, _, body, _ = fastcgi(httpd.sock(name), script, "action=list")
        assert status == 200, body
        cached = body.decode().split()
        assert os.path.join(r2, "public", "version.php") in cached, (name, cached)
    assert [rep["release"] for rep in httpd.status()["replicas"]] == [r1, r1]  # nothing flipped
