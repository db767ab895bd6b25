"""Warm-up before ready: at a graceful restart each replacement master
compiles the working set of the master it replaces (opcache's list, through
share/warmup.php) before it takes a request, and the status document and the
metrics show how many scripts and how long."""

import os
import shutil

import harness
from test_760_warmup_script import fastcgi
from test_800_supervision import all_ready, spawn_vhost

WARMUP_SOURCE = os.path.join(harness.SOURCE_DIR, "share", "warmup.php")


def test_a_replacement_compiles_the_working_set_before_it_is_ready(httpd):
    script = os.path.join(httpd.root, "share", "warmup.php")
    os.makedirs(os.path.dirname(script))
    shutil.copy(WARMUP_SOURCE, script)
    os.chmod(script, 0o644)
    # The test's scripts were copied a moment ago: opcache keeps nothing
    # younger than file_update_protection (2 s by default).
    command = (f"{harness.php_fpm_binary()} --nodaemonize --fpm-config {harness.FPM_SUPERVISED_CONF} "
               "-d opcache.file_update_protection=0")
    httpd.write_config(spawn_vhost(httpd, command=command).add(f"FpmReplicaWarmup script={script}"))
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
