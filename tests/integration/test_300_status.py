"""The status handler: the SPEC's JSON document, and drain/undrain through a
POST that must carry the nonce."""

import os
import re
import threading
import time

import harness
from test_200_steering import replica_of, start_two, wait_in_flight


def test_status_document_fields(httpd):
    start_two(httpd)
    r = httpd.get("/fpm-replica-status")
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/json"
    doc = r.json()
    assert doc["vhost"] == f"app.test:{httpd.port}"
    assert doc["mode"] == "realpath"  # no FpmReplicaStablePath
    assert doc["release"] is None
    assert re.fullmatch(r"[0-9a-f]{32}", doc["nonce"])
    assert [rep["name"] for rep in doc["replicas"]] == ["a", "b"]
    for rep, fpm in zip(doc["replicas"], httpd.fpms):
        assert rep["socket"] == f"unix:{httpd.sock(rep['name'])}"
        assert rep["state"] == "ready"
        assert rep["release"] is None
        assert rep["pid"] == fpm.pid  # the master that listens on the socket
        assert (rep["in_flight"], rep["requests"], rep["failures"], rep["restarts"]) == (0, 0, 0, 0)


def test_post_without_or_with_wrong_nonce_is_403(httpd):
    start_two(httpd)
    httpd.expect_log(r"FPMR00018")
    assert httpd.post("/fpm-replica-status", {"action": "drain", "replica": "a"}).status == 403
    assert httpd.control("drain", "a", nonce="0" * 32).status == 403
    assert httpd.replica("a")["state"] == "ready"


def test_bad_control_requests(httpd):
    start_two(httpd)
    assert httpd.control("drain", "zz").status == 404
    assert httpd.control("explode", "a").status == 400
    r = httpd.control("restart", "a")
    assert r.status == 409 and "not supervised" in r.json()["error"]


def test_drain_lets_in_flight_finish_and_sends_new_requests_elsewhere(httpd):
    start_two(httpd)
    # Occupy a with a slow request, then drain it.
    results = []
    slow = threading.Thread(target=lambda: results.append(httpd.get("/slow.php?ms=2500", timeout=20)))
    slow.start()
    try:
        harness.wait_for(lambda: sum(r["in_flight"] for r in httpd.status()["replicas"]) == 1,
                         5, what="slow request in flight")
        busy = next(r["name"] for r in httpd.status()["replicas"] if r["in_flight"] == 1)
        other = "b" if busy == "a" else "a"
        r = httpd.control("drain", busy)
        assert r.status == 200
        assert next(x for x in r.json()["replicas"] if x["name"] == busy)["state"] == "draining"
        served = [replica_of(httpd.get("/fast.php")) for _ in range(8)]
        assert served == [other] * 8
        assert httpd.replica(busy)["in_flight"] == 1
    finally:
        slow.join()
    assert results[0].status == 200 and f"replica={busy}" in results[0].text
    wait_in_flight(httpd, busy, 0)
    assert httpd.replica(busy)["state"] == "draining"
    assert httpd.control("undrain", busy).status == 200
    served = {replica_of(httpd.get("/fast.php")) for _ in range(4)}
    assert served == {"a", "b"}


def test_drain_state_survives_graceful_restart(httpd):
    start_two(httpd)
    nonce = httpd.status()["nonce"]
    assert httpd.control("drain", "b", nonce).status == 200
    httpd.get("/fast.php")
    requests_before = httpd.replica("a")["requests"]
    httpd.graceful()
    status = httpd.status()
    assert status["nonce"] == nonce
    a, b = status["replicas"]
    assert b["state"] == "draining"
    assert a["requests"] == requests_before  # counters kept across the restart
    served = [replica_of(httpd.get("/fast.php")) for _ in range(4)]
    assert served == ["a"] * 4


def test_graceful_restart_during_load_keeps_counts_exact(httpd):
    start_two(httpd)
    run = httpd.load([("/fast.php", 8), ("/slow.php?ms=1000", 2)], duration=4)
    import time
    time.sleep(1.5)
    httpd.graceful()
    result = run.wait()
    assert result.failures() == [], result.summary()
    harness.wait_for(lambda: all(r["in_flight"] == 0 for r in httpd.status()["replicas"]),
                     10, what="in_flight back to 0 after a graceful restart under load")


def test_prometheus_format_passes_promtool(httpd):
    import shutil
    import subprocess
    start_two(httpd)
    httpd.get("/fast.php")
    r = httpd.get("/fpm-replica-status?format=prometheus")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'fpm_replica_requests_total{vhost="app.test:%d",replica="a"} 1' % httpd.port in r.text
    assert 'fpm_replica_state{vhost="app.test:%d",replica="b",state="ready"} 1' % httpd.port in r.text
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) is needed"
    check = subprocess.run([promtool, "check", "metrics"], input=r.text, capture_output=True,
                           text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr


def test_prometheus_has_pool_release_and_duration_figures(httpd):
    """php-fpm's own pool figures read from each status= socket at scrape
    time (no exporter), the per-release answers and the duration histogram,
    all clean for promtool."""
    import re
    import shutil
    import subprocess
    from releases import flip, make_release
    from vhosts import pinned_vhost
    app = os.path.join(httpd.root, "app")
    public = os.path.join(make_release(app, "r1"), "public")
    with open(os.path.join(public, "fail.php"), "w") as f:
        f.write("<?php http_response_code(500); echo 'failed';\n")
    flip(app, "releases/r1")
    httpd.write_config(pinned_vhost(httpd, app, status=True))
    httpd.start_fpm("a")
    httpd.start_fpm("b")
    httpd.start()
    for _ in range(5):
        assert httpd.get("/version.php").status == 200
    assert httpd.get("/fail.php").status == 500
    r = httpd.get("/fpm-replica-status?format=prometheus")
    assert r.status == 200
    text = r.text
    vhost = f'vhost="app.test:{httpd.port}"'
    release = os.path.realpath(os.path.join(app, "current"))

    def value(series):
        m = re.search("^" + re.escape(series) + r" (\S+)$", text, re.M)
        assert m, f"{series} missing from:\n{text}"
        return float(m.group(1))
    for name in ("a", "b"):
        labels = f'{{{vhost},replica="{name}"}}'
        assert value("fpm_replica_pool_up" + labels) == 1
        assert value("fpm_replica_pool_total_processes" + labels) >= 1
        assert value("fpm_replica_pool_listen_queue" + labels) == 0
        assert value("fpm_replica_pool_accepted_connections_total" + labels) >= 1
    rel = f'{{{vhost},release="{release}"}}'
    assert value("fpm_replica_release_requests_total" + rel) == 6
    assert value("fpm_replica_release_server_errors_total" + rel) == 1
    assert value("fpm_replica_release_in_flight" + rel) == 0
    counts = sum(value(f'fpm_replica_request_duration_seconds_count{{{vhost},replica="{n}",release="{release}"}}')
                 for n in ("a", "b"))
    assert counts == 6
    inf = sum(value(f'fpm_replica_request_duration_seconds_bucket{{{vhost},replica="{n}",release="{release}",'
                    f'le="+Inf"}}') for n in ("a", "b"))
    assert inf == 6
    promtool = shutil.which("promtool")
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    # A pool whose master is gone shows as down once the cached figures
    # (a second) are out of date, and the scrape is not held up by it.
    httpd.fpms[-1].stop()
    time.sleep(1.2)
    started = time.monotonic()
    text = httpd.get("/fpm-replica-status?format=prometheus").text
    assert time.monotonic() - started < 2
    assert value(f'fpm_replica_pool_up{{{vhost},replica="b"}}') == 0
    assert value(f'fpm_replica_pool_up{{{vhost},replica="a"}}') == 1
    assert f'fpm_replica_pool_idle_processes{{{vhost},replica="b"}}' not in text
