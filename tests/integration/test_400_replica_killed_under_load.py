"""SIGKILL to one replica's whole process group under load (fast and slow
requests in flight): no request that started more than 50 ms after the kill
fails, and at most the requests that replica held at that instant fail."""

import signal
import time

import harness
from test_200_steering import start_two


def test_sigkill_one_replica_under_load(httpd):
    start_two(httpd, workers=6)
    httpd.expect_log(*harness.REPLICA_KILLED_LOG)
    run = httpd.load([("/fast.php", 8), ("/slow.php?ms=1500", 3)], duration=6)
    time.sleep(2.0)
    held = httpd.replica("b")["in_flight"]
    killed_at = time.time()
    httpd.fpms[1].kill_group(signal.SIGKILL)
    result = run.wait()

    failures = result.failures()
    late = [r for r in failures if r["start"] > killed_at + 0.05]
    after = [r for r in result.records if r["start"] > killed_at + 0.05]
    print(f"{result.summary()}; b held {held} at the kill; {len(failures)} failed")
    assert late == [], late[:5]
    assert len(failures) <= held, failures[:5]
    assert len(after) > 100, "the load must go on after the kill"
    assert all(r["status"] == 200 for r in after)

    b = httpd.replica("b")
    assert b["state"] == "failed" and b["in_flight"] == 0
    harness.wait_for(lambda: httpd.replica("a")["in_flight"] == 0, 10,
                     what="in_flight of a back to 0")
