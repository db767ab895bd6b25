"""Every PHP request learns the release it is pinned to, as the FastCGI
parameters FPM_REPLICA_RELEASE (its real path) and FPM_REPLICA_RELEASE_ID
(its directory name), in both modes, so the application can key its caches
and temp paths by release; under flips, each response's parameters name the
release its own files came from, and a client cannot forge them."""

import os
import re
import time

import harness
from releases import flip, make_release
from test_600_helper import setup  # noqa: F401 (fixture)
from test_800_supervision import replicas_serve
from vhosts import namespace_vhost, pinned_vhost

PARAMS = re.compile(r"^file=(\S+) release_id=(\S+) release=(\S+)$")


def check_params_under_flips(httpd, app, releases, mode):
    """Load on params.php while the symlink flips between the releases."""
    run = httpd.load([("/params.php", 6), ("/static.txt", 2)], duration=6)
    for rid in ["r2", "r1", "r2"]:
        time.sleep(1.5)
        flip(app, f"releases/{rid}")
    result = run.wait()
    answers = [r for r in result.records if r["path"] == "/params.php" and r["status"] == 200]
    wrong = []
    seen = set()
    for rec in answers:
        m = PARAMS.match(rec["body"].strip())
        if not m or m.group(1) != m.group(2) or m.group(3) != releases[m.group(1)]:
            wrong.append(rec["body"])
        else:
            seen.add(m.group(1))
    print(f"{mode}: {result.summary()}: wrong {len(wrong)}")
    assert result.failures() == [], result.failures()[:3]
    assert wrong == [], wrong[:3]
    assert seen == {"r1", "r2"}, seen
    # A client's header arrives as HTTP_*, never as the parameter.
    body = httpd.get("/params.php", headers={"FPM-Replica-Release-Id": "forged",
                                             "FPM_REPLICA_RELEASE": "/forged"}).text
    assert "forged" not in body, body


def test_realpath_mode_requests_carry_their_release(httpd):
    app = os.path.join(httpd.root, "app")
    releases = {rid: make_release(app, rid) for rid in ("r1", "r2")}
    flip(app, "releases/r1")
    httpd.write_config(pinned_vhost(httpd, app))
    httpd.start_fpm("a")
    httpd.start_fpm("b")
    httpd.start()
    assert httpd.get("/params.php").text == f"file=r1 release_id=r1 release={releases['r1']}\n"
    check_params_under_flips(httpd, app, releases, "realpath")


def test_namespace_mode_requests_carry_their_release(httpd, setup):  # noqa: F811
    """php-fpm sees only the stable path; the parameters still name the
    release behind it."""
    flip(setup["app"], "releases/r1")
    httpd.write_config(namespace_vhost(httpd, setup["app"], setup["live"], setup["conf"]))
    httpd.start()
    harness.wait_for(lambda: replicas_serve(httpd, setup["r1"], "namespace"), 15, what="r1 served")
    releases = {"r1": setup["r1"], "r2": setup["r2"]}
    assert httpd.get("/params.php").text == f"file=r1 release_id=r1 release={releases['r1']}\n"
    check_params_under_flips(httpd, setup["app"], releases, "namespace")
