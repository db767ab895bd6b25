"""Every stop escalates: whatever stops a supervised master (a restart in
place, the retirement of a removed replica, httpd's own stop), a request that
never finishes cannot keep it running past FpmReplicaDrainTimeout: the
supervisor SIGKILLs its process group then.

The php-fpm masters here have process_control_timeout = 120s, so php-fpm's
own escalation cannot be what ends them within the bounds asserted."""

import os
import re
import signal
import socket
import time

import harness
from test_800_supervision import all_ready, supervisor_pid
from vhosts import fpm_command, steering_vhost

DRAIN = 3  # FpmReplicaDrainTimeout, seconds
# Drain timeout, plus the time a master gets to exit after a drained stop,
# plus a wide margin for a noisy machine; far below php-fpm's 120 s.
BOUND = 2 * DRAIN + 12
# The hung request on the other replica still holds an httpd worker when the
# test stops httpd: httpd's own reclaim warnings (AH00045/AH00046) then.
ESCALATION_LOG = (r"FPMR00063", r"FPMR00040", r"FPMR00031", r"AH00045", r"AH00046") + \
    harness.REPLICA_KILLED_LOG


def patient_fpm_conf(httpd):
    """The supervised test configuration, with php-fpm's own stop timeout far away."""
    with open(harness.FPM_SUPERVISED_CONF) as f:
        text = f.read()
    text = re.sub(r"process_control_timeout = \S+", "process_control_timeout = 120s", text)
    path = os.path.join(httpd.root, "conf", "fpm-patient.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def vhost(httpd, names=("a", "b"), tcp_port=None):
    """Supervised replicas `names` on the patient php-fpm configuration, each
    with its usual status socket; `a` on tcp_port if one is given."""
    config = steering_vhost(httpd, names=())
    for name in names:
        tcp = f"tcp:127.0.0.1:{tcp_port}" if name == "a" and tcp_port else None
        config.replica(name, tcp, status=True)
    return config.spawn(fpm_command(patient_fpm_conf(httpd)), drain=f"{DRAIN}s")


def start(httpd, config):
    """httpd on `config`, once every replica is ready: {name: master pid}."""
    httpd.write_config(config)
    httpd.start()
    httpd.expect_log(*ESCALATION_LOG)
    ready = harness.wait_for(lambda: all_ready(httpd), 15, what="replicas ready")
    return {r["name"]: r["pid"] for r in ready}


def hang(httpd, count):
    """`count` requests that run for ten minutes, one per replica (least busy
    first); the sockets are returned so the test can close them."""
    conns = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", httpd.port), timeout=5)
        s.sendall(b"GET /slow.php?ms=600000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        conns.append(s)
        time.sleep(0.3)
    harness.wait_for(lambda: sum(r["in_flight"] for r in httpd.status()["replicas"]) == count,
                     10, what="the hung requests in flight")
    return conns


def close_all(conns):
    for s in conns:
        s.close()


def end_hung_requests(httpd, conns):
    """Closes the hung clients and kills the php-fpm workers still running
    their requests. A request whose master was killed before it answered is
    replayed on another (docs/architecture.md, "Failover"), so a hung one
    outlives the master the test stopped; left running it would hold httpd's
    stop for the whole child reclaim (about 10 s per test)."""
    close_all(conns)
    httpd.expect_log(r"FPMR00009", r"AH01170")  # the replays find no replica left to try: 503
    for _ in range(2):  # the replay of a replay ends too
        for r in httpd.status()["replicas"]:
            for worker in harness.children_of(r["pid"]) if r["pid"] else []:
                try:
                    os.kill(worker, signal.SIGKILL)
                except OSError:
                    pass
        time.sleep(0.3)


def gone_within(pid, bound):
    started = time.monotonic()
    harness.wait_for(lambda: not harness.pid_alive(pid), bound,
                     what=f"master {pid} stopped within {bound}s")
    return time.monotonic() - started


def test_a_restart_in_place_kills_a_hung_master_at_the_drain_timeout(httpd):
    # A tcp: replica has no alternate socket: its restart stops it first.
    before = start(httpd, vhost(httpd, tcp_port=harness.free_port()))
    conns = hang(httpd, 2)
    try:
        assert httpd.control("restart", "a").status == 200
        took = gone_within(before["a"], BOUND)
        print(f"hung master stopped {took:.1f}s after the restart")
        harness.wait_for(lambda: (lambda reps: reps if reps and reps[0]["pid"] != before["a"]
                                  else None)(all_ready(httpd)), 15, what="a running again")
        assert "FPMR00063" in httpd.read_log()
    finally:
        end_hung_requests(httpd, conns)


def test_a_removed_replica_with_a_hung_request_is_stopped(httpd):
    before = start(httpd, vhost(httpd))
    conns = hang(httpd, 2)
    try:
        httpd.expect_log(r"FPMR00001")  # one replica left: its warning
        httpd.write_config(vhost(httpd, names=("a",)))
        httpd.graceful()
        took = gone_within(before["b"], BOUND + 2)  # + the retirement's grace for old children
        print(f"removed replica's hung master stopped {took:.1f}s after the restart")
        gone_within(before["a"], BOUND)  # a's replacement drained it too
    finally:
        end_hung_requests(httpd, conns)


def test_httpd_stop_kills_hung_masters_at_the_drain_timeout(httpd):
    before = start(httpd, vhost(httpd))
    conns = hang(httpd, 2)
    try:
        started = time.monotonic()
        httpd.stop(timeout=BOUND)
        for pid in before.values():
            harness.wait_for(lambda: not harness.pid_alive(pid), 5, what=f"master {pid} gone")
        print(f"httpd and its hung masters stopped in {time.monotonic() - started:.1f}s")
    finally:
        close_all(conns)


def test_a_master_a_new_supervisor_does_not_keep_is_killed_at_the_drain_timeout(httpd):
    """The supervisor dies in the middle of a replacement: its successor keeps
    the serving masters and stops the draining one, which a hung request
    holds, so the stop escalates there too."""
    before = start(httpd, vhost(httpd))
    httpd.expect_log(r"FPMR00032")
    conns = hang(httpd, 2)
    try:
        sup = supervisor_pid(httpd)
        httpd.graceful()
        # a's replacement is ready and its old master drains (held by its hung request).
        harness.wait_for(lambda: "draining the old one (pid %d)" % before["a"] in httpd.read_log(),
                         15, what="a draining")
        os.kill(sup, signal.SIGKILL)
        harness.wait_for(lambda: "took over" in httpd.read_log(), 10, what="a new supervisor")
        took = gone_within(before["a"], BOUND)
        print(f"the old master the new supervisor did not keep stopped {took:.1f}s after")
    finally:
        end_hung_requests(httpd, conns)
