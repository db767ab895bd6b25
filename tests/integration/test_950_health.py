"""FpmReplicaHealthCheck: FastCGI checks of every replica from one checker per
httpd instance; a hung or dead replica leaves rotation within interval *
fails and comes back by itself."""

import os
import signal
import time

import harness
from test_200_steering import replica_of
from test_800_supervision import all_ready, spawn_vhost
from vhosts import steering_vhost

CHECK = "interval=200ms timeout=200ms fails=2 passes=1"  # FpmReplicaHealthCheck


def test_a_hung_replica_leaves_rotation_and_comes_back(httpd):
    httpd.write_config(steering_vhost(httpd, status=True).health_check(CHECK))
    httpd.start_fpm("a")
    b = httpd.start_fpm("b")
    httpd.start()
    harness.wait_for(lambda: all(r["state"] == "ready" for r in httpd.status()["replicas"]), 5,
                     what="replicas ready")
    httpd.expect_log(r"FPMR00044", r"FPMR00045")
    # Hung: the whole process group stopped; connections are accepted by the
    # kernel but never answered.
    b.kill_group(signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        harness.wait_for(lambda: httpd.replica("b")["state"] == "failed", 5, what="b failed")
        detected = time.monotonic() - stopped_at
        assert detected < 0.2 * 2 + 0.2 * 2 + 0.5, detected  # interval*fails + one timeout each
        served = [replica_of(httpd.get("/fast.php", timeout=5)) for _ in range(6)]
        assert served == ["a"] * 6
    finally:
        b.kill_group(signal.SIGCONT)
    harness.wait_for(lambda: httpd.replica("b")["state"] == "ready", 5, what="b back")
    assert {replica_of(httpd.get("/fast.php")) for _ in range(4)} == {"a", "b"}
    metrics = httpd.get("/fpm-replica-status?format=prometheus").text
    assert 'fpm_replica_health_check_seconds{vhost="app.test:%d",replica="a"} 0.' % httpd.port in metrics


def test_a_hung_supervised_replica_is_restarted(httpd):
    httpd.write_config(spawn_vhost(httpd).health_check(CHECK))
    httpd.start()
    before = harness.wait_for(lambda: all_ready(httpd), 15, what="replicas ready")
    httpd.expect_log(r"FPMR00044", r"FPMR00028", *harness.REPLICA_KILLED_LOG)
    hung = before[1]["pid"]
    os.killpg(hung, signal.SIGSTOP)
    reps = harness.wait_for(lambda: (lambda r: r if r and r[1]["pid"] != hung else None)(
        all_ready(httpd)), 15, what="b restarted with a new pid")
    assert reps[1]["restarts"] >= 1
    assert all(httpd.get("/fast.php").status == 200 for _ in range(4))


def check_seconds(httpd, replica):
    """The duration of the replica's last health check (Prometheus)."""
    metrics = httpd.get("/fpm-replica-status?format=prometheus").text
    for line in metrics.splitlines():
        if line.startswith("fpm_replica_health_check_seconds{") and f'replica="{replica}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return float("inf")


def test_hung_replicas_hold_up_nothing_else(httpd):
    """Checks are in flight side by side, never waited for: while the checks
    of two hung replicas (a and c) each hang for their 3 s timeout, b's
    master is killed, restarted and ready again as fast as without any
    check, and b's own checks keep their millisecond latency. (Checks run
    one after the other would keep the supervisor busy with a and c.)"""
    slow_check = "interval=3s timeout=3s fails=2 passes=1"
    httpd.write_config(spawn_vhost(httpd, names=("a", "b", "c")).health_check(slow_check))
    httpd.start()
    before = harness.wait_for(lambda: all_ready(httpd), 15, what="replicas ready")
    httpd.expect_log(r"FPMR00044", r"FPMR00028", *harness.REPLICA_KILLED_LOG)
    hung = [before[0]["pid"], before[2]["pid"]]
    victim = before[1]["pid"]
    for pid in hung:
        os.killpg(pid, signal.SIGSTOP)
    try:
        time.sleep(3.5)  # every check of a and c now hangs
        os.killpg(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        harness.wait_for(lambda: (lambda r: r["state"] == "ready" and r["pid"] not in (0, victim))(
            httpd.replica("b")), 15, interval=0.02, what="b restarted")
        took = time.monotonic() - killed_at
        # 0.5 s of crash backoff plus php-fpm's start.
        assert took < 2.0, took
        harness.wait_for(lambda: check_seconds(httpd, "b") < 0.05, 8,
                         what="b's checks answered in milliseconds")
    finally:
        for pid in hung:
            try:
                os.killpg(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass  # restarted meanwhile: its checks failed


def test_bad_health_check_options_are_refused(httpd):
    httpd.write_config(steering_vhost(httpd).health_check("fails=0"))
    r = httpd.configtest()
    assert r.returncode != 0
    assert "FpmReplicaHealthCheck: fails=0 must be a number from 1 to 100" in r.stderr


def test_a_check_answered_with_a_500_fails(httpd):
    """A complete answer is not a passing one: as mod_proxy_hcheck, only 2xx
    and 3xx pass. Replica b's health script answers 500; a's answers 200."""
    sick = os.path.join(httpd.root, "htdocs", "sick.php")
    with open(sick, "w") as f:
        f.write("<?php\nhttp_response_code(($_SERVER['FPM_REPLICA_NAME'] ?? '') === 'b' ? 500 : 200);\n"
                "echo 'checked';\n")
    # No status= socket: the checks go to the main socket, which runs PHP.
    httpd.write_config(steering_vhost(httpd).health_check(
        f"interval=200ms fails=2 passes=1 path={sick}"))
    httpd.start_fpm("a")
    httpd.start_fpm("b")
    httpd.start()
    httpd.expect_log(r"FPMR00044")
    b = harness.wait_for(lambda: (lambda r: r if r["state"] == "failed" else None)(
        httpd.replica("b")), 10, what="b out of rotation")
    assert b["health"] == "failing", b
    assert b["reason"] == "failing its health checks: answered 500", b
    a = httpd.replica("a")
    assert a["state"] == "ready" and a["health"] == "passing" and a["reason"] is None, a
    assert [replica_of(httpd.get("/fast.php", timeout=5)) for _ in range(6)] == ["a"] * 6
