"""A graceful restart applies a changed configuration to the running
supervisor: a new FpmReplicaSpawn command reaches every replica through its
rolling replacement, an added replica starts, a removed one drains and stops,
a replica moved to another socket starts there while the old master drains;
under load, with no failed request."""

import os
import time

import harness
from test_800_supervision import (all_ready, fpm_masters_of, spawn_vhost, start_supervised,
                                  supervisor_pid)

CONFIG_PHP = """<?php
header('Content-Type: text/plain');
echo 'config=', $_SERVER['FPMR_CONFIG'] ?? 'first', ' replica=', $_SERVER['FPM_REPLICA_NAME'] ?? '?', "\\n";
"""


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_a_new_spawn_command_rolls_out_with_graceful(httpd):
    with open(os.path.join(httpd.root, "htdocs", "config.php"), "w") as f:
        f.write(CONFIG_PHP)
    second = os.path.join(httpd.root, "conf", "second.conf")
    with open(harness.FPM_SUPERVISED_CONF) as f, open(second, "w") as g:
        g.write(f.read() + "env[FPMR_CONFIG] = second\n")
    before, sup = start_supervised(httpd)

    run = httpd.load([("/config.php", 6), ("/slow.php?ms=1500", 2)], duration=9)
    try:
        time.sleep(1.5)
        command = f"{harness.php_fpm_binary()} --nodaemonize --fpm-config {second}"
        httpd.write_config(spawn_vhost(httpd, command=command))
        httpd.graceful()
        old = set(before.values())
        after = harness.wait_for(lambda: (lambda reps: reps if reps and not old & {
            r["pid"] for r in reps} else None)(all_ready(httpd)), 30,
            what="both replicas replaced")
        switched_at = time.time()
        result = run.wait()
    finally:
        run.kill()
    assert not result.failures(), result.summary()
    assert supervisor_pid(httpd) == sup
    for r in after:
        assert "second.conf" in cmdline(r["pid"]), cmdline(r["pid"])
    assert fpm_masters_of(sup) == sorted(r["pid"] for r in after)
    bodies = [r["body"] for r in result.records if r["path"] == "/config.php"]
    assert any(b.startswith("config=first") for b in bodies)
    late = [r["body"] for r in result.records
            if r["path"] == "/config.php" and r["start"] > switched_at]
    assert late and all(b.startswith("config=second") for b in late), late[:3]
    slow = [r for r in result.records if r["path"].startswith("/slow")]
    assert slow and all("ms=1500" in r["body"] for r in slow)


def test_added_replicas_start_and_removed_ones_drain_and_stop(httpd):
    before, sup = start_supervised(httpd)

    run = httpd.load([("/fast.php", 6), ("/slow.php?ms=2000", 3)], duration=9)
    try:
        time.sleep(1.5)
        httpd.write_config(spawn_vhost(httpd, names=("a", "c")))
        httpd.graceful()
        after = harness.wait_for(lambda: (lambda reps: reps if reps and [
            r["name"] for r in reps] == ["a", "c"] and reps[0]["pid"] != before["a"]
            else None)(all_ready(httpd)), 30, what="a replaced and c started")
        harness.wait_for(lambda: not harness.pid_alive(before["b"]), 20,
                         what="the removed replica's master stopped")
        result = run.wait()
    finally:
        run.kill()
    assert not result.failures(), result.summary()
    served = {r["body"].split()[1] for r in result.records
              if r["path"] == "/fast.php" and r["status"] == 200}
    assert {"replica=a", "replica=b", "replica=c"} <= served, served
    slow = [r for r in result.records if r["path"].startswith("/slow")]
    assert slow and all("ms=2000" in r["body"] for r in slow)
    harness.wait_for(lambda: fpm_masters_of(sup) == sorted(r["pid"] for r in after), 10,
                     what="only a's and c's masters left")
    # c started once: an added replica is not replaced by the restart that added it.
    assert [r["restarts"] for r in all_ready(httpd)] == [1, 0]
    log = httpd.read_log()
    assert "FPMR00051" in log and "1 added, 1 removed" in log, log[-2000:]
    assert "FPMR00053" in log


def test_a_replica_moved_to_another_socket_starts_there(httpd):
    before, sup = start_supervised(httpd)
    moved = os.path.join(httpd.root, "run", "b-moved.sock")

    run = httpd.load([("/fast.php", 6), ("/slow.php?ms=2000", 3)], duration=8)
    try:
        time.sleep(1.5)
        # b keeps its status socket: only its main socket moves.
        httpd.write_config(spawn_vhost(httpd, names=("a",)).replica("b", f"unix:{moved}",
                                                                    status=True))
        httpd.graceful()
        after = harness.wait_for(lambda: (lambda reps: reps if reps and reps[1]["socket"] ==
                                          f"unix:{moved}" else None)(all_ready(httpd)), 30,
                                 what="b ready on its new socket")
        harness.wait_for(lambda: not harness.pid_alive(before["b"]), 20,
                         what="b's old master stopped")
        result = run.wait()
    finally:
        run.kill()
    assert not result.failures(), result.summary()
    assert after[1]["pid"] != before["b"]
    assert harness.unix_socket_accepts(moved)
    harness.wait_for(lambda: fpm_masters_of(sup) == sorted(r["pid"] for r in all_ready(httpd)),
                     10, what="only the masters in the status document left")
    assert "1 added, 1 removed" in httpd.read_log()
