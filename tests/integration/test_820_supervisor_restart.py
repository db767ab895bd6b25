"""The supervisor itself dies (SIGKILL) under load: its masters keep serving,
httpd starts a new supervisor at once, which takes them over: it notices
when one of them dies and restarts it, replaces them at the next graceful
restart, and stops them with httpd. No failed request, no php-fpm master
left behind."""

import os
import signal
import time

import harness
from test_800_supervision import all_ready, fpm_masters_of, start_supervised, supervisor_pid

SUPERVISOR_DIED_LOG = (r"FPMR00032",)


def test_a_killed_supervisor_is_replaced_and_its_masters_taken_over(httpd):
    before, first = start_supervised(httpd)
    httpd.expect_log(*SUPERVISOR_DIED_LOG)
    # Killing a's master later: what mod_proxy and the module log for it.
    httpd.expect_log(*harness.REPLICA_KILLED_LOG, r"FPMR00028")

    run = httpd.load([("/fast.php", 6), ("/slow.php?ms=1500", 2)], duration=10)
    masters_seen = set(before.values())
    try:
        time.sleep(1)
        os.kill(first, signal.SIGKILL)
        # Masters are adopted, not restarted: same pids, still ready.
        harness.wait_for(lambda: "took over 2 running php-fpm masters" in httpd.read_log(), 10,
                         what="a new supervisor taking over")
        reps = all_ready(httpd)
        assert reps and {r["name"]: r["pid"] for r in reps} == before

        # It watches what it adopted: a's master dies, a new one serves.
        os.killpg(before["a"], signal.SIGKILL)
        restarted = harness.wait_for(lambda: (lambda reps: reps if reps and reps[0]["pid"] not in (
            0, before["a"]) else None)(all_ready(httpd)), 15, what="a restarted")
        masters_seen.update(r["pid"] for r in restarted)
        second = supervisor_pid(httpd)
        assert second != first

        # And replaces what it adopted at the next graceful restart.
        httpd.graceful()
        replaced = harness.wait_for(lambda: (lambda reps: reps if reps and not {
            r["pid"] for r in reps} & masters_seen else None)(all_ready(httpd)), 30,
            what="every master replaced")
        masters_seen.update(r["pid"] for r in replaced)
        result = run.wait()
    finally:
        run.kill()
    failed = result.failures()
    print(f"{result.summary()}; failed {len(failed)}")
    # Neither the supervisor's death nor a's (idempotent requests in flight
    # on a fail over, as in test_400) fails a request.
    assert failed == [], failed[:5]
    harness.wait_for(lambda: fpm_masters_of(supervisor_pid(httpd)) ==
                     sorted(r["pid"] for r in all_ready(httpd)), 10,
                     what="no master beyond the replicas")
    httpd.stop()
    leftover = [pid for pid in masters_seen if harness.pid_alive(pid)]
    assert not leftover, f"php-fpm masters outlived httpd: {leftover}"
