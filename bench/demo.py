"""The local demo: httpd with mod_fpm_replica supervising two php-fpm
replicas on loopback (namespace mode: each master in its own mount namespace
through fpm-replica-helper), under load (fast and slow PHP, static files):
a deploy (the release symlink flipped), a restart (`apachectl graceful`) and
a replica SIGKILLed, then the count of failed requests.

Run it through bench/demo.sh, which installs and builds first."""

import os
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import harness  # noqa: E402
from releases import flip, make_release  # noqa: E402
from vhosts import namespace_vhost  # noqa: E402


def replicas(httpd):
    return ", ".join(f"{r['name']}: {r['state']} pid {r['pid']} release "
                     f"{os.path.basename(r['release'] or '-')}"
                     for r in httpd.status()["replicas"])


def wait_rolled(httpd, release, restarts_before):
    def done():
        reps = httpd.status()["replicas"]
        return (all(r["state"] == "ready" and r["release"] == release for r in reps) and
                sum(r["restarts"] for r in reps) >= restarts_before + len(reps))
    harness.wait_for(done, 60, what="the replicas to be replaced")


def main():
    os.makedirs("/tmp/fpmr-demo", exist_ok=True)
    os.chmod("/tmp/fpmr-demo", 0o755)
    root = tempfile.mkdtemp(prefix="demo-", dir="/tmp/fpmr-demo")
    os.chmod(root, 0o755)
    httpd = harness.Httpd(root)
    app, live = os.path.join(root, "app"), os.path.join(root, "app", "live")
    r1, r2 = make_release(app, "r1"), make_release(app, "r2")
    os.makedirs(live)
    helper_conf = os.path.join(root, "conf", "helper.conf")
    with open(helper_conf, "w") as f:
        f.write(f"release-root {app}/releases\nstable-path {live}\n")
    os.chmod(helper_conf, 0o644)
    flip(app, "releases/r1")
    try:
        httpd.write_config(namespace_vhost(httpd, app, live, helper_conf, drain="10s"))
        httpd.start()
        harness.wait_for(lambda: all(r["state"] == "ready" for r in httpd.status()["replicas"]),
                         20, what="replicas ready")
        print(f"demo: httpd on http://127.0.0.1:{httpd.port}/ ({root})")
        print(f"demo: {replicas(httpd)}")
        run = httpd.load([("/version.php", 8), ("/slow.php?ms=1500", 2), ("/static.txt", 2)],
                         duration=120)
        time.sleep(2)

        restarts = sum(r["restarts"] for r in httpd.status()["replicas"])
        print("demo: deploy: flip current -> releases/r2")
        flip(app, "releases/r2")
        wait_rolled(httpd, r2, restarts)
        print(f"demo: {replicas(httpd)}")

        restarts = sum(r["restarts"] for r in httpd.status()["replicas"])
        print("demo: restart: apachectl graceful")
        httpd.graceful()
        wait_rolled(httpd, r2, restarts)
        print(f"demo: {replicas(httpd)}")

        victim = httpd.replica("b")["pid"]
        print(f"demo: SIGKILL to replica b's process group (pid {victim})")
        os.killpg(victim, signal.SIGKILL)
        harness.wait_for(lambda: httpd.replica("b")["state"] == "ready" and
                         httpd.replica("b")["pid"] != victim, 20, what="b restarted")
        print(f"demo: {replicas(httpd)}")
        time.sleep(2)
        run.stop()
        result = run.wait()
        failures = result.failures()
        print(f"demo: {result.summary()}")
        print(f"failed requests: {len(failures)}")
        return 0 if not failures else 1
    finally:
        httpd.cleanup()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
