"""The release lifecycle from the CLI: `releases` lists what uses each
release, `prune --keep N` never deletes one still in use (a slow request
pinned to it, a master serving it, the symlink or the rollback target), and
`deploy --watch` flips a release that answers 500 back by itself, under load."""

import os
import re
import threading
import time

import harness
from releases import flip, make_release
from test_600_helper import setup  # noqa: F401 (fixture)
from test_800_supervision import all_ready, replicas_serve
from test_970_cli import cli
from vhosts import namespace_vhost, pinned_vhost

SLOW = "/slow.php?ms={ms}"


def release_figures(httpd, release):
    for use in httpd.status()["releases"]:
        if use["release"] == release:
            return use
    return {"release": release, "in_flight": 0, "requests": 0, "server_errors": 0, "replicas": []}


def hold_slow_request(httpd, ms):
    """A slow request in a thread: returns (thread, result dict)."""
    result = {}

    def run():
        result["response"] = httpd.get(SLOW.format(ms=ms), timeout=ms / 1000 + 20)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, result


def flip_and_see(httpd, app, rid, release, previous):
    """A plain flip, once the supervisor has seen it (previous_release moves)."""
    flip(app, f"releases/{rid}")
    harness.wait_for(lambda: (lambda doc: doc["release"] == release and doc["previous_release"] == previous)(
        httpd.status()), 10, what=f"{rid} current, the flip seen")


def realpath_app(httpd, rids):
    app = os.path.join(httpd.root, "app")
    paths = {rid: make_release(app, rid) for rid in rids}
    flip(app, f"releases/{rids[0]}")
    httpd.write_config(pinned_vhost(httpd, app, status=True).spawn())
    httpd.start()
    harness.wait_for(lambda: all_ready(httpd), 15, what="replicas ready")
    return app, paths


def test_prune_refuses_a_release_a_slow_request_still_runs_on(httpd):
    """Realpath mode: no master belongs to a release, so only the request
    figures keep r1 from being deleted under its slow request."""
    app, rel = realpath_app(httpd, ["r1", "r2", "r3"])
    thread, result = hold_slow_request(httpd, 6000)
    harness.wait_for(lambda: release_figures(httpd, rel["r1"])["in_flight"] >= 1, 5,
                     what="the slow request in flight on r1")
    flip_and_see(httpd, app, "r2", rel["r2"], rel["r1"])
    flip_and_see(httpd, app, "r3", rel["r3"], rel["r2"])

    r = cli(httpd, "releases")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {line.split()[0]: line.split() for line in r.stdout.splitlines()[2:]}
    assert list(rows) == ["r3", "r2", "r1"], r.stdout
    assert rows["r3"][3] == "current" and rows["r2"][3] == "previous", r.stdout
    assert rows["r3"][1] == "0", r.stdout  # the status requests do not count themselves
    assert rows["r1"][1] == "1", r.stdout  # the slow request

    r = cli(httpd, "prune", "--keep", "1")
    assert r.returncode == 3, r.stdout + r.stderr  # kept releases in use
    assert f"kept {rel['r1']}: 1 request in flight" in r.stdout, r.stdout
    assert f"kept {rel['r2']}: it is the release before the last flip" in r.stdout, r.stdout
    assert os.path.isdir(rel["r1"]) and os.path.isdir(rel["r2"])
    # remove: a release named by the operator (a deploy tool's rollback
    # cleanup). The rollback target r2 is no reason to keep it, its
    # request is; the current release never goes, nor a directory elsewhere.
    r = cli(httpd, "remove", rel["r1"])
    assert r.returncode == 3 and f"kept {rel['r1']}: 1 request in flight" in r.stderr, r.stdout + r.stderr
    r = cli(httpd, "remove", rel["r3"], "--wait", "1s")
    assert r.returncode == 1 and "names " + rel["r3"] + ": it was not deleted" in r.stderr, r.stdout + r.stderr
    os.symlink("r1", os.path.join(app, "releases", "link-to-r1"))  # a link is not the release
    r = cli(httpd, "remove", os.path.join(app, "releases", "link-to-r1"))
    assert r.returncode == 1 and "is not a directory in" in r.stderr, r.stdout + r.stderr
    r = cli(httpd, "remove", os.path.join(httpd.root, "htdocs"))
    assert r.returncode == 1 and "is not a directory in " + os.path.join(app, "releases") in r.stderr, r.stderr
    r = cli(httpd, "remove", rel["r2"])
    assert (r.returncode, r.stdout.strip()) == (0, f"deleted {rel['r2']}"), r.stdout + r.stderr
    assert not os.path.exists(rel["r2"]) and os.path.isdir(os.path.join(httpd.root, "htdocs"))
    assert release_figures(httpd, rel["r1"])["in_flight"] == 1
    r = cli(httpd, "remove", rel["r1"], "--wait", "20s")  # returns once the slow request answered
    assert (r.returncode, r.stdout.strip()) == (0, f"deleted {rel['r1']}"), r.stdout + r.stderr

    thread.join(5)
    assert not thread.is_alive(), "remove --wait deleted r1 before its request answered"
    response = result["response"]
    assert response.status == 200 and "ms=6000" in response.text, response.text
    assert release_figures(httpd, rel["r1"])["requests"] >= 1
    assert not os.path.exists(rel["r1"]) and os.path.isdir(rel["r3"])
    assert httpd.get("/version.php").text.startswith("release=r3 inc=r3 ")
    r = cli(httpd, "prune")
    assert r.returncode == 2 and "--keep" in r.stderr


def test_prune_waits_for_a_draining_master_in_namespace_mode(httpd, setup):  # noqa: F811
    """Namespace mode: after two flips, r1's draining master (with a slow
    request on it) and the rollback target r2 are kept; r1 goes once its
    master has stopped."""
    flip(setup["app"], "releases/r1")
    # A drain timeout longer than the slow request, which it must not cut.
    httpd.write_config(namespace_vhost(httpd, setup["app"], setup["live"], setup["conf"], drain="30s"))
    httpd.start()
    harness.wait_for(lambda: replicas_serve(httpd, setup["r1"], "namespace"), 15, what="r1 served")
    r3 = make_release(setup["app"], "r3")
    thread, result = hold_slow_request(httpd, 7000)
    harness.wait_for(lambda: release_figures(httpd, setup["r1"])["in_flight"] >= 1, 5,
                     what="the slow request in flight on r1")
    # Plain flips, as a deploy tool makes them (the CLI's deploy would wait
    # for r1's master to finish draining).
    flip_and_see(httpd, setup["app"], "r2", setup["r2"], setup["r1"])
    flip_and_see(httpd, setup["app"], "r3", r3, setup["r2"])
    uses = release_figures(httpd, setup["r1"])
    assert uses["replicas"] and uses["in_flight"] == 1, uses  # the master still serving the slow request
    r = cli(httpd, "prune", "--keep", "1")
    assert r.returncode == 3, r.stdout + r.stderr
    assert re.search(rf"kept {re.escape(setup['r1'])}: masters of [\w,]+ serve it; 1 request in flight", r.stdout), r.stdout
    assert os.path.isdir(setup["r1"])
    thread.join(25)
    assert result["response"].status == 200, result["response"].text
    harness.wait_for(lambda: not release_figures(httpd, setup["r1"])["replicas"], 20,
                     what="r1's master stopped")
    r = cli(httpd, "prune", "--keep", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not os.path.exists(setup["r1"])
    assert httpd.get("/version.php").text.startswith("release=r3 inc=r3 ")


def broken_release(app, rid):
    path = make_release(app, rid)
    with open(os.path.join(path, "public", "version.php"), "w") as f:
        f.write("<?php http_response_code(500); echo 'broken release=" + rid + "';\n")
    return path


def test_watched_deploy_rolls_a_failing_release_back_under_load(httpd):
    app, rel = realpath_app(httpd, ["r1", "r2"])
    bad = broken_release(app, "bad")
    run = httpd.load([("/version.php", 6), ("/static.txt", 2), (SLOW.format(ms=1500), 1)], duration=40)
    try:
        time.sleep(1.5)
        started = time.time()
        r = cli(httpd, "deploy", bad, "--watch", "20s", "--max-error-rate", "0.05")
        finished = time.time()
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"rolled back to {rel['r1']} because {bad}:" in r.stderr, r.stderr
        assert re.search(r"\d+ of its \d+ PHP answers were 5xx", r.stderr), r.stderr
        assert finished - started < 15, "the watch should roll back well before its window ends"
        assert os.path.realpath(os.path.join(app, "current")) == rel["r1"]
        figures = release_figures(httpd, bad)
        assert figures["server_errors"] >= 1 and figures["requests"] >= figures["server_errors"]
        # A good release passes its watch.
        r = cli(httpd, "deploy", rel["r2"], "--watch", "3s")
        assert r.returncode == 0, r.stdout + r.stderr
        assert re.search(r"watched .*/r2 for 3s: \d+ PHP answers, 0 5xx", r.stdout), r.stdout
    finally:
        run.stop()
    result = run.wait()
    failures = result.failures()
    # The only failures are the bad release's own 500s, within the watch.
    foreign = [f for f in failures if not (f["status"] == 500 and "broken release=bad" in f["body"])]
    late = [f for f in failures if f["start"] > finished + 0.5]
    print(f"{result.summary()}: bad release's 500s {len(failures)}, others {len(foreign)}")
    assert foreign == [], foreign[:3]
    assert late == [], late[:3]
    assert 1 <= len(failures)
    assert any(rec["start"] > finished and rec["body"].startswith("release=r2")
               for rec in result.records if rec["path"] == "/version.php")


def test_a_forged_status_document_cannot_aim_prune_remove_or_deploy_elsewhere(httpd):
    """Attack: the status document comes from an httpd child, and any PHP
    page can pretend to be the handler. One names, as its release symlink, a
    link into a directory that is no release layout (here: a victim's files
    and a symlink to them); prune, remove and deploy, run as root, refuse it
    and change nothing."""
    import json
    app, rel = realpath_app(httpd, ["r1", "r2"])
    victim = os.path.join(httpd.root, "victim")
    for name in ("a", "b", "c"):
        os.makedirs(os.path.join(victim, "data", name))
    os.symlink(os.path.join(victim, "data", "a"), os.path.join(victim, "current"))
    forged = {"vhost": "app.test", "mode": "realpath", "release": os.path.join(victim, "data", "a"),
              "release_link": os.path.join(victim, "current"), "previous_release": None, "prepared": None,
              "nonce": "x", "replicas": [], "releases": []}
    with open(os.path.join(rel["r1"], "public", "forged.php"), "w") as f:
        f.write("<?php header('Content-Type: application/json'); echo " + repr(json.dumps(forged)) + ";\n")
    url = httpd.url("/forged.php")
    for args in (["prune", "--keep", "1"], ["releases"], ["deploy", os.path.join(victim, "data", "b")],
                 ["remove", os.path.join(victim, "data", "c")]):
        r = cli(httpd, *args, url=url)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert "will not change files for" in r.stderr or "is not a directory" in r.stderr, (args, r.stderr)
    assert sorted(os.listdir(os.path.join(victim, "data"))) == ["a", "b", "c"]
    assert os.readlink(os.path.join(victim, "current")) == os.path.join(victim, "data", "a")
    assert not os.path.lexists(os.path.join(victim, "current.previous"))
