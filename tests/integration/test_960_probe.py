"""The probe lane (FpmReplicaProbe): fast answers while every main worker is
busy, from the replicas' probe pools or their status sockets; 503 when the
vhost has no usable replica."""

import os
import threading
import time

import harness
from vhosts import steering_vhost

PROBE_CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fpm-probe.conf")


def vhost(httpd, probe_pools):
    """Replicas a and b with their status sockets, and their probe pools'
    sockets if `probe_pools`."""
    return steering_vhost(httpd, status=True, probe=probe_pools).probe("/healthz.php")


def occupy_every_worker(httpd, count):
    threads = [threading.Thread(target=lambda: httpd.get("/slow.php?ms=4000", timeout=30))
               for _ in range(count)]
    for t in threads:
        t.start()
    harness.wait_for(lambda: sum(r["in_flight"] for r in httpd.status()["replicas"]) >= count, 5,
                     what="every main worker busy")
    return threads


def timed_get(httpd, path):
    t0 = time.monotonic()
    r = httpd.get(path, timeout=10)
    return r, (time.monotonic() - t0) * 1000


def test_probe_pool_answers_fast_while_every_worker_is_busy(httpd):
    httpd.write_config(vhost(httpd, probe_pools=True))
    for name in ("a", "b"):
        httpd.start_fpm(name, workers=2, conf=PROBE_CONF,
                        extra_env={"FPM_REPLICA_PROBE_LISTEN": httpd.sock(name) + ".probe"})
    httpd.start()
    threads = occupy_every_worker(httpd, 6)  # 4 workers busy, 2 more requests queued
    try:
        r, ms = timed_get(httpd, "/healthz.php")
        assert r.status == 200 and "pool=probe" in r.text, r.text
        assert ms < 300, ms
    finally:
        for t in threads:
            t.join()


def test_without_probe_pools_the_status_socket_answers(httpd):
    httpd.write_config(vhost(httpd, probe_pools=False))
    httpd.start_fpm("a", workers=2)
    httpd.start_fpm("b", workers=2)
    httpd.start()
    threads = occupy_every_worker(httpd, 6)
    try:
        r, ms = timed_get(httpd, "/healthz.php")
        assert r.status == 200 and r.text.startswith("ok "), r.text
        assert ms < 300, ms
    finally:
        for t in threads:
            t.join()


def test_probe_answers_503_without_a_usable_replica(httpd):
    httpd.write_config(vhost(httpd, probe_pools=False))
    httpd.start_fpm("a")
    httpd.start_fpm("b")
    httpd.start()
    nonce = httpd.status()["nonce"]
    for name in ("a", "b"):
        httpd.control("drain", name, nonce)
    r, ms = timed_get(httpd, "/healthz.php")
    assert r.status == 503 and ms < 300
    httpd.control("undrain", "a", nonce)
    assert httpd.get("/healthz.php").status == 200
