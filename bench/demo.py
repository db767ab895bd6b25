"""The local demo: httpd with mod_fpm_replica and two php-fpm replicas on
loopback, load through it (fast and slow PHP requests plus static files), one
replica SIGKILLed mid-run, and the count of failed requests.

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
from vhosts import steering_vhost  # noqa: E402


def main():
    os.makedirs("/tmp/fpmr-demo", exist_ok=True)
    os.chmod("/tmp/fpmr-demo", 0o755)
    root = tempfile.mkdtemp(prefix="demo-", dir="/tmp/fpmr-demo")
    os.chmod(root, 0o755)
    shutil.copytree(harness.PHP_DIR, os.path.join(root, "htdocs"), dirs_exist_ok=True)
    httpd = harness.Httpd(root)
    try:
        httpd.write_config(steering_vhost(httpd))
        httpd.start_fpm("a", workers=6)
        httpd.start_fpm("b", workers=6)
        httpd.start()
        print(f"demo: httpd on http://127.0.0.1:{httpd.port}/ with replicas a and b "
              f"(server root {root})")
        duration = 10
        run = httpd.load([("/fast.php", 8), ("/slow.php?ms=1500", 2), ("/static.txt", 2)],
                         duration=duration)
        time.sleep(4)
        held = httpd.replica("b")["in_flight"]
        print(f"demo: SIGKILL to replica b's process group (it held {held} requests)")
        httpd.fpms[1].kill_group(signal.SIGKILL)
        time.sleep(3)
        print("demo: replica b restarted by hand (supervision is not built yet)")
        httpd.fpms[1].start()
        result = run.wait()
        failures = result.failures()
        for rep in httpd.status()["replicas"]:
            print(f"demo: replica {rep['name']}: state {rep['state']}, requests "
                  f"{rep['requests']}, failures {rep['failures']}")
        print(f"demo: {result.summary()}")
        print(f"failed requests: {len(failures)}")
        return 0 if not failures else 1
    finally:
        httpd.cleanup()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
