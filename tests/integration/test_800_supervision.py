"""Supervised replicas (FpmReplicaSpawn): started by the module, ready once
they answer, restarted with backoff when they die, kept across graceful
restarts without duplicates, stopped with httpd."""

import os
import re
import signal
import time

import harness
from vhosts import pinned_vhost, steering_vhost


def spawn_vhost(httpd, command=None, names=("a", "b"), drain="5s"):
    """Supervised replicas `names`, each with a status socket: a VhostConfig,
    to which a test adds what else it needs."""
    return steering_vhost(httpd, names=names, status=True).spawn(command, drain=drain)


def all_ready(httpd):
    reps = httpd.status()["replicas"]
    return reps if all(r["state"] == "ready" and r["pid"] for r in reps) else None


def replicas_serve(httpd, release, mode, not_pids=()):
    """Every replica ready on `release` (the vhost's; in namespace mode each
    replica's own too) and none of `not_pids`: the replicas, else None."""
    reps = all_ready(httpd)
    if not reps or httpd.status()["release"] != release:
        return None
    if mode == "namespace" and any(r["release"] != release for r in reps):
        return None
    if any(r["pid"] in not_pids for r in reps):
        return None
    return reps


def fpm_masters_of(supervisor_pid):
    """php-fpm masters whose parent is the supervisor."""
    out = []
    for pid in harness.children_of(supervisor_pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"php-fpm" in f.read():
                    out.append(pid)
        except OSError:
            continue
    return out


def start_supervised(httpd, **vhost):
    """httpd with spawn_vhost(**vhost), once every replica is ready: returns
    {name: master pid} and the supervisor's pid."""
    httpd.write_config(spawn_vhost(httpd, **vhost))
    httpd.start()
    ready = harness.wait_for(lambda: all_ready(httpd), 15, what="replicas ready")
    return {r["name"]: r["pid"] for r in ready}, supervisor_pid(httpd)


def supervisor_pid(httpd):
    pid = int(open(f"/proc/{httpd.replica('a')['pid']}/stat").read().rsplit(")", 1)[1].split()[1])
    return pid


def test_replicas_start_serve_and_are_children_of_one_supervisor(httpd):
    httpd.write_config(spawn_vhost(httpd))
    httpd.start()
    reps = harness.wait_for(lambda: all_ready(httpd), 15, what="both replicas ready")
    sup = supervisor_pid(httpd)
    assert sup != httpd.main_pid
    assert fpm_masters_of(sup) == sorted(r["pid"] for r in reps)
    served = {httpd.get("/fast.php").text.split()[1] for _ in range(6)}
    assert served == {"replica=a", "replica=b"}
    assert [r["restarts"] for r in reps] == [0, 0]


def test_a_killed_replica_is_restarted_with_a_new_pid(httpd):
    httpd.write_config(spawn_vhost(httpd))
    httpd.start()
    harness.wait_for(lambda: all_ready(httpd), 15, what="both replicas ready")
    old = httpd.replica("b")["pid"]
    httpd.expect_log(*harness.REPLICA_KILLED_LOG, r"FPMR00028")
    os.killpg(old, signal.SIGKILL)
    for _ in range(5):
        assert httpd.get("/fast.php").status == 200
    reps = harness.wait_for(lambda: all_ready(httpd), 10, what="b restarted")
    b = reps[1]
    assert b["pid"] != old and b["restarts"] == 1
    assert len(fpm_masters_of(supervisor_pid(httpd))) == 2


def test_graceful_restart_replaces_every_master_without_duplicates(httpd):
    httpd.write_config(spawn_vhost(httpd))
    httpd.start()
    before = harness.wait_for(lambda: all_ready(httpd), 15, what="both replicas ready")
    sup = supervisor_pid(httpd)
    old_pids = {r["pid"] for r in before}
    httpd.graceful()
    # Replaced: new masters serve and the old ones have exited.
    after = harness.wait_for(
        lambda: (lambda reps: reps if reps and not old_pids & {r["pid"] for r in reps} and
                 [r["restarts"] for r in reps] == [1, 1] else None)(all_ready(httpd)),
        30, what="both masters replaced")
    assert supervisor_pid(httpd) == sup
    assert fpm_masters_of(sup) == sorted(r["pid"] for r in after)
    assert [r["restarts"] for r in after] == [1, 1]
    # The replacements listen on the alternate sockets; the next restart
    # moves them back.
    assert {r["socket"] for r in after} == {f"unix:{httpd.sock(n)}.alt" for n in ("a", "b")}
    assert httpd.get("/fast.php").status == 200


def test_graceful_restart_under_load_fails_nothing(httpd):
    httpd.write_config(spawn_vhost(httpd))
    httpd.start()
    before = harness.wait_for(lambda: all_ready(httpd), 15, what="both replicas ready")
    sup = supervisor_pid(httpd)
    run = httpd.load([("/fast.php", 8), ("/slow.php?ms=1500", 2), ("/static.txt", 2)], duration=9)
    time.sleep(1.5)
    httpd.graceful()
    old_pids = {r["pid"] for r in before}
    harness.wait_for(lambda: (lambda reps: reps and not old_pids & {r["pid"] for r in reps})(
        all_ready(httpd)), 20, what="both masters replaced")
    result = run.wait()
    failed = result.failures()
    print(f"{result.summary()}; failed {len(failed)}")
    assert failed == [], failed[:5]
    slow = [r for r in result.records if r["path"].startswith("/slow")]
    assert slow and all("ms=1500" in r["body"] for r in slow if r["status"] == 200)
    assert len(fpm_masters_of(sup)) == 2


def test_restart_action_replaces_one_replica(httpd):
    httpd.write_config(spawn_vhost(httpd))
    httpd.start()
    before = harness.wait_for(lambda: all_ready(httpd), 15, what="both replicas ready")
    r = httpd.control("restart", "a")
    assert r.status == 200
    reps = harness.wait_for(
        lambda: (lambda reps: reps if reps and reps[0]["restarts"] == 1 else None)(
            all_ready(httpd)), 20, what="a replaced")
    assert reps[0]["pid"] != before[0]["pid"]
    assert reps[1]["pid"] == before[1]["pid"]
    assert reps[0]["restarts"] == 1


def test_stop_leaves_no_master(httpd):
    httpd.write_config(spawn_vhost(httpd))
    httpd.start()
    reps = harness.wait_for(lambda: all_ready(httpd), 15, what="both replicas ready")
    sup = supervisor_pid(httpd)
    pids = [r["pid"] for r in reps]
    httpd.stop()
    harness.wait_for(lambda: not any(harness.pid_alive(p) for p in pids + [sup]), 15,
                     what="masters and supervisor gone after stop")


def test_a_replica_that_keeps_crashing_is_marked_failed(httpd):
    httpd.write_config(spawn_vhost(httpd, command="/bin/false"))
    httpd.start()
    httpd.expect_log(r"FPMR00027", r"FPMR00028", r"FPMR00009", r"AH01170")
    harness.wait_for(lambda: all(r["state"] == "failed" for r in httpd.status()["replicas"]), 20,
                     what="both replicas failed")
    t0 = time.monotonic()
    assert httpd.get("/fast.php").status == 503
    assert time.monotonic() - t0 < 1.0
    log = httpd.read_log()
    assert "crashed 5 times within a minute: marked failed" in log
    reasons = {r["reason"] for r in httpd.status()["replicas"]}
    assert reasons == {"crashed repeatedly within a minute (last: exited with status 1): "
                       "not restarted until the next restart"}, reasons


def test_bad_supervision_directives_are_refused(httpd):
    for line, message in [
        ('FpmReplicaSpawn "php-fpm -F"', "must start with the absolute path of php-fpm"),
        ("FpmReplicaSpawn \"/usr/sbin/php-fpm 'x\"", "unclosed single quote"),
        ("FpmReplicaHelper helper", "'helper' must be an absolute path"),
        ("FpmReplicaHelper /usr/libexec/fpm-replica-helper conf=/x", "is not config=/absolute/path"),
        ("FpmReplicaDrainTimeout 0", "must be between 1s and 1h"),
    ]:
        httpd.write_config(steering_vhost(httpd).add(line))
        r = httpd.configtest()
        assert r.returncode != 0 and message in r.stderr, (line, r.stderr)


def test_realpath_mode_supervised_flip_and_graceful_under_load(httpd):
    """No stable path: replicas start without the helper and any replica
    serves any release; a flip and a graceful restart under load."""
    from releases import flip, make_release
    app = os.path.join(httpd.root, "app")
    make_release(app, "r1")
    make_release(app, "r2")
    flip(app, "releases/r1")
    httpd.write_config(pinned_vhost(httpd, app, status=True).spawn())
    httpd.start()
    before = harness.wait_for(lambda: all_ready(httpd), 15, what="replicas ready")
    run = httpd.load([("/version.php", 8), ("/static.txt", 2), ("/slow.php?ms=1500", 2)], duration=8)
    time.sleep(1.5)
    flip(app, "releases/r2")
    flipped_at = time.time()
    time.sleep(1)
    httpd.graceful()
    old = {r["pid"] for r in before}
    harness.wait_for(lambda: (lambda reps: reps and not old & {r["pid"] for r in reps})(
        all_ready(httpd)), 20, what="masters replaced")
    result = run.wait()
    failed = result.failures()
    stale = [r for r in result.records if r["start"] > flipped_at and "release=r1" in r["body"]]
    torn = [r for r in result.records if r["path"] == "/version.php" and r["status"] == 200 and
            not re.search(r"release=(\w+) inc=\1 ", r["body"])]
    print(f"{result.summary()}: failed {len(failed)}, stale {len(stale)}, torn {len(torn)}")
    assert (len(failed), len(stale), len(torn)) == (0, 0, 0), (failed[:3], stale[:3], torn[:3])


def test_missing_socket_directories_are_created(httpd):
    """php-fpm does not create its listen socket's directory; /run starts
    empty at boot. The supervisor creates what is missing."""
    nested = os.path.join(httpd.root, "d", "e")  # socket paths: 91 characters at most
    vhost = spawn_vhost(httpd, names=())
    for name in ("a", "b"):
        vhost.replica(name, f"unix:{nested}/{name}.sock",
                      status=f"unix:{nested}/{name}.sock.status")
    httpd.write_config(vhost)
    httpd.start()
    harness.wait_for(lambda: all_ready(httpd), 15, what="both replicas ready")
    assert os.path.isdir(nested) and oct(os.stat(nested).st_mode & 0o777) == "0o755"
    assert httpd.get("/fast.php").status == 200
    assert "FPMR00056" in httpd.read_log()


def test_an_operators_drain_survives_the_replacement_at_graceful(httpd):
    """A drained supervised replica is replaced at the graceful restart (the
    new php-fpm configuration must reach it too) but stays drained: the
    nightly logrotate reload must not bring it back into service."""
    before, _ = start_supervised(httpd)
    assert httpd.control("drain", "a").status == 200
    httpd.graceful()
    replaced = harness.wait_for(lambda: (lambda reps: reps if reps and all(
        r["pid"] and r["pid"] not in before.values() and r["restarts"] == 1 for r in reps)
        else None)(httpd.status()["replicas"]), 30, what="both masters replaced")
    a = next(r for r in replaced if r["name"] == "a")
    assert a["admin"] == "drained" and a["state"] == "draining", a
    assert a["reason"] == "drained by the operator", a
    served = {httpd.get("/fast.php").text.split()[1] for _ in range(8)}
    assert served == {"replica=b"}
    assert httpd.control("undrain", "a").status == 200
    assert httpd.replica("a")["state"] == "ready"
