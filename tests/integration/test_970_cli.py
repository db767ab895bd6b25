"""The fpm-replica CLI against a live server."""

import json
import os
import subprocess

import harness
from test_800_supervision import all_ready, spawn_vhost
from vhosts import steering_vhost

CLI = harness.CLI


def cli(httpd, *args, url=None):
    """Global options (--host) may lead args."""
    url = url or httpd.url("/fpm-replica-status")
    return subprocess.run([CLI, "--url", url, "--timeout", "30", *args],
                          capture_output=True, text=True, timeout=60)


def test_status_drain_undrain(httpd):
    httpd.write_config(steering_vhost(httpd))
    httpd.start_fpm("a")
    httpd.start_fpm("b")
    httpd.start()
    r = cli(httpd, "status")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"vhost app.test:{httpd.port}")
    assert lines[1].split()[:3] == ["NAME", "STATE", "PID"]
    assert lines[2].split()[:2] == ["a", "ready"]
    doc = json.loads(cli(httpd, "status", "--json").stdout)
    assert [x["name"] for x in doc["replicas"]] == ["a", "b"]
    r = cli(httpd, "drain", "b")
    assert r.returncode == 0 and r.stdout.startswith("b: draining"), r.stdout + r.stderr
    assert httpd.replica("b")["state"] == "draining"
    assert cli(httpd, "undrain", "b").returncode == 0
    assert httpd.replica("b")["state"] == "ready"


def test_host_selects_a_name_based_vhost(httpd):
    """Two vhosts on one address: the first (the default) has no status
    handler; --host reaches the application's by its ServerName, a drain
    included (a POST)."""
    default = (f"<VirtualHost 127.0.0.1:{httpd.port}>\n    ServerName default.test\n"
               f"    DocumentRoot {httpd.root}/htdocs\n    <Directory {httpd.root}/htdocs>\n"
               f"        Require all granted\n    </Directory>\n</VirtualHost>\n")
    app = (f"<VirtualHost 127.0.0.1:{httpd.port}>\n    ServerName app.test\n"
           f"{steering_vhost(httpd)}\n</VirtualHost>\n")
    httpd.write_config(default + app, own_vhost=False)
    httpd.start_fpm("a")
    httpd.start_fpm("b")
    httpd.start()
    r = cli(httpd, "status")
    assert r.returncode == 1 and "answered 404" in r.stderr and "--host" in r.stderr, r.stdout + r.stderr
    r = cli(httpd, "--host", "app.test", "status")
    assert r.returncode == 0 and r.stdout.startswith(f"vhost app.test:{httpd.port}"), r.stderr
    # Named once for the shell instead: FPM_REPLICA_HOST (an option still wins).
    env = dict(os.environ, FPM_REPLICA_HOST="app.test")
    r = subprocess.run([CLI, "--url", httpd.url("/fpm-replica-status"), "status"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith(f"vhost app.test:{httpd.port}"), r.stderr
    r = subprocess.run([CLI, "--url", httpd.url("/fpm-replica-status"), "--host", "default.test", "status"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "FPM_REPLICA_HOST" in r.stderr, r.stdout + r.stderr
    r = cli(httpd, "--host", "app.test", "drain", "a")
    assert r.returncode == 0, r.stdout + r.stderr
    assert httpd.status(headers={"Host": "app.test"})["replicas"][0]["state"] == "draining"


def test_failures_and_usage(httpd):
    httpd.write_config(steering_vhost(httpd))
    httpd.start_fpm("a")
    httpd.start_fpm("b")
    httpd.start()
    r = cli(httpd, "drain", "zz")
    assert r.returncode == 1 and "unknown replica 'zz'" in r.stderr
    r = cli(httpd, "restart", "a")
    assert r.returncode == 1 and "not supervised" in r.stderr
    r = cli(httpd, "status", url=f"http://127.0.0.1:{harness.free_port()}/fpm-replica-status")
    assert r.returncode == 1 and "cannot reach the status handler" in r.stderr
    assert cli(httpd, "frobnicate").returncode == 2
    assert cli(httpd, "drain").returncode == 2


def test_restart_replaces_every_replica_and_waits(httpd):
    httpd.write_config(spawn_vhost(httpd))
    httpd.start()
    before = harness.wait_for(lambda: all_ready(httpd), 15, what="replicas ready")
    r = cli(httpd, "restart")
    assert r.returncode == 0, r.stdout + r.stderr
    after = all_ready(httpd)
    assert after and all(a["pid"] != b["pid"] for a, b in zip(after, before))
    assert [x["restarts"] for x in after] == [1, 1]
    assert r.stdout.count("replaced") == 2
