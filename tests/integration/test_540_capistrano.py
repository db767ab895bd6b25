"""Capistrano, for real: Debian's capistrano package (local SSHKit backend,
a git repository as the source) deploys to supervised replicas in
namespace mode under load, with contrib/capistrano/fpm_replica.rake loaded.
Several deploys, one whose keep_releases cleanup reaches a release a
request still runs on, and a `cap deploy:rollback` away from a release with
a request in flight: zero failed, zero stale, zero torn. Unmodified,
Capistrano deletes both releases under those requests."""

import os
import re
import shutil
import subprocess
import threading
import time

import pytest

import harness
from releases import make_release, write_helper_conf
from test_800_supervision import all_ready, replicas_serve
from vhosts import namespace_vhost, pinned_vhost

CAP = shutil.which("cap")
RAKE_FILE = os.path.join(harness.SOURCE_DIR, "contrib", "capistrano", "fpm_replica.rake")
KEEP_RELEASES = 2

# A request held open until the test removes its flag file (or 25 s pass),
# that then reads a file of its own release (past opcache, which may hold
# the included one): deleting the release under it shows in the answer.
HOLD_PHP = """<?php
$flag = '@HOLD_DIR@/' . basename($_GET['flag'] ?? 'none');
if (is_file($flag)) {
    touch($flag . '.running');
}
$deadline = microtime(true) + 25;  // within the harness' Timeout 30
while (is_file($flag) && microtime(true) < $deadline) {
    usleep(20000);
    clearstatcache();
}
$inc = include __DIR__ . '/inc.php';
$static = @file_get_contents(__DIR__ . '/static.txt');
header('Content-Type: text/plain');
echo 'held release=@RID@ inc=', $inc, ' file=', $static === false ? 'missing' : trim($static), "\\n";
"""

CAPFILE = """require "capistrano/setup"
require "capistrano/deploy"
require "capistrano/scm/git"
install_plugin Capistrano::SCM::Git
@LOAD_PLUGIN@
"""

DEPLOY_RB = """set :application, "app"
set :repo_url, "file://@REPO@"
set :branch, "main"
set :deploy_to, "@APP@"
set :keep_releases, @KEEP@
set :log_level, :info
set :fpm_replica_cli, "@CLI@"
set :fpm_replica_options, ["--url", "@STATUS_URL@", "--timeout", "60"]
set :fpm_replica_remove_wait, "60s"
"""

STAGE_RB = """set :sshkit_backend, SSHKit::Backend::Local
server "localhost", roles: %w[web app]
"""


class Project:
    """A git repository of the application and a Capistrano project that
    deploys it to `app`; commit(rid) makes the next revision, run() a cap."""

    def __init__(self, root, app, status_url, plugin=True):
        self.root, self.app = root, app
        self.repo = os.path.join(root, "src.git")
        self.work = os.path.join(root, "src")
        self.hold_dir = os.path.join(root, "hold")
        self.cap_dir = os.path.join(root, "cap")
        os.makedirs(self.hold_dir)
        os.chmod(self.hold_dir, 0o777)  # the workers mark the held requests running
        home = os.path.join(root, "cap-home")
        os.makedirs(home)
        self.env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": home, "LANG": "C.UTF-8",
                    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost",
                    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@localhost"}
        self.git("init", "-q", "--bare", "-b", "main", self.repo, cwd=root)
        self.git("init", "-q", "-b", "main", self.work, cwd=root)
        os.makedirs(os.path.join(self.cap_dir, "config", "deploy"))
        load = f'load "{RAKE_FILE}"' if plugin else "# unmodified Capistrano"
        files = {"Capfile": CAPFILE.replace("@LOAD_PLUGIN@", load),
                 "config/deploy.rb": DEPLOY_RB.replace("@REPO@", self.repo).replace("@APP@", app)
                 .replace("@KEEP@", str(KEEP_RELEASES)).replace("@CLI@", harness.CLI)
                 .replace("@STATUS_URL@", status_url),
                 "config/deploy/production.rb": STAGE_RB}
        for name, text in files.items():
            with open(os.path.join(self.cap_dir, name), "w") as f:
                f.write(text)

    def git(self, *args, cwd=None):
        subprocess.run(["git", *args], cwd=cwd or self.work, env=self.env, check=True,
                       capture_output=True, timeout=30)

    def commit(self, rid):
        """The application's revision `rid`: the suite's release files
        (each names its release) and the hold script."""
        scratch = os.path.join(self.root, "scratch")
        public = os.path.join(make_release(scratch, rid), "public")
        with open(os.path.join(public, "hold.php"), "w") as f:
            f.write(HOLD_PHP.replace("@HOLD_DIR@", self.hold_dir).replace("@RID@", rid))
        shutil.rmtree(os.path.join(self.work, "public"), ignore_errors=True)
        shutil.copytree(public, os.path.join(self.work, "public"))
        shutil.rmtree(scratch)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", rid)
        self.git("push", "-q", self.repo, "main")

    def cap(self, *tasks, timeout=120):
        r = subprocess.run([CAP, "production", *tasks], cwd=self.cap_dir, env=self.env,
                           capture_output=True, text=True, timeout=timeout)
        return r

    def current(self):
        return os.path.realpath(os.path.join(self.app, "current"))

    def releases(self):
        return sorted(os.listdir(os.path.join(self.app, "releases")))

    # --- requests held on a release --------------------------------------------------
    def hold(self, httpd, name):
        """A request pinned to the current release, held until release(name)."""
        flag = os.path.join(self.hold_dir, name)
        open(flag, "w").close()
        result = {}
        thread = threading.Thread(
            target=lambda: result.update(response=httpd.get(f"/hold.php?flag={name}", timeout=90)),
            daemon=True)
        thread.start()
        harness.wait_for(lambda: os.path.exists(flag + ".running"), 10,
                         what=f"held request {name} running")
        return thread, result

    def release(self, name):
        os.unlink(os.path.join(self.hold_dir, name))


def release_id(text):
    m = re.search(r"release=(\w+) inc=(\w+)", text)
    return m.group(1) if m and m.group(1) == m.group(2) else None


@pytest.fixture
def project(httpd):
    if CAP is None:
        pytest.skip("Debian's capistrano package is not installed (tests/setup.sh installs it)")
    app = os.path.join(httpd.root, "app")
    return Project(httpd.root, app, httpd.url("/fpm-replica-status"),
                   plugin=not os.environ.get("FPMR_CAPISTRANO_UNMODIFIED"))


@pytest.mark.parametrize("mode", ["namespace", "realpath"])
def test_capistrano_deploys_cleanups_and_rollback_under_load(httpd, project, mode):
    app = project.app
    # The first deploy makes the layout (no current yet: the plugin's
    # fpm-replica step leaves it to Capistrano's own symlink step; its
    # cleanup has nothing to delete yet).
    project.commit("v1")
    first = project.cap("deploy")
    assert first.returncode == 0, first.stdout + first.stderr
    if mode == "namespace":
        live = os.path.join(app, "live")
        os.makedirs(live)
        conf = write_helper_conf(os.path.join(httpd.root, "conf", "helper.conf"),
                                 f"{app}/releases", live)
        # A drain timeout beyond the held requests: the module's own limit
        # is not what this test is about.
        httpd.write_config(namespace_vhost(httpd, app, live, conf, drain="60s"))
    else:
        httpd.write_config(pinned_vhost(httpd, app, status=True).spawn(drain="60s"))
    httpd.start()
    harness.wait_for(lambda: all_ready(httpd), 30, what="replicas ready on v1")

    deployed = {"v1": project.current()}  # rid -> real path of its release
    returned_at = {}   # rid -> when the cap run that made it current returned
    held = {}

    def deploy(rid):
        time.sleep(1.0)  # Capistrano names releases by the second
        project.commit(rid)
        r = project.cap("deploy")
        returned_at[rid] = time.time()
        assert r.returncode == 0, r.stdout + r.stderr
        deployed[rid] = project.current()
        harness.wait_for(lambda: replicas_serve(httpd, deployed[rid], mode), 30,
                         what=f"{rid} served")
        return r.stdout + r.stderr

    run = httpd.load([("/version.php", 6), ("/static.txt", 2), ("/slow.php?ms=1500", 1),
                      ("/hold.php?flag=none", 1)], duration=180, timeout=90)
    try:
        time.sleep(1.0)
        deploy("v2")
        held["v2"] = project.hold(httpd, "on-v2")
        if mode == "realpath":
            # Masters serve every release: the request pinned to v2 runs on
            # through the deploys of v3 and v4, and keep_releases=2 has v4's
            # cleanup reach v2 under it.
            deploy("v3")
            output = deploy("v4")
            assert os.path.isdir(deployed["v2"]), "v2 deleted under its request"
            assert f"kept {deployed['v2']}: 1 request in flight" in output, output
            project.release("on-v2")
        else:
            # A master drains before the next one is replaced: the deploy of
            # v3 waits for the request on v2 (released 3 s into it), and no
            # request can still run on v2 by the time v4's cleanup deletes it.
            threading.Timer(3.0, project.release, ("on-v2",)).start()
            deploy("v3")
            deploy("v4")
        held["v2"][0].join(30)
        # The rollback from v4 with a request on it: Capistrano's
        # cleanup_rollback removes v4, once that request has answered.
        held["v4"] = project.hold(httpd, "on-v4")
        threading.Timer(3.0, project.release, ("on-v4",)).start()
        t0 = time.monotonic()
        rollback = project.cap("deploy:rollback")
        returned_at["v3-again"] = time.time()
        waited = time.monotonic() - t0
        assert rollback.returncode == 0, rollback.stdout + rollback.stderr
        assert project.current() == deployed["v3"]
        assert not os.path.exists(deployed["v4"])
        assert os.path.isfile(os.path.join(
            app, f"rolled-back-release-{os.path.basename(deployed['v4'])}.tar.gz"))
        assert waited >= 3.0, f"cap deploy:rollback returned after {waited:.1f}s, before the request ended"
        held["v4"][0].join(30)
        # The next deploy's cleanup deletes what nothing uses beyond the 2 newest.
        deploy("v5")
        assert project.releases() == sorted(os.path.basename(deployed[r]) for r in ("v3", "v5"))
        time.sleep(1.0)
    finally:
        run.stop()
    result = run.wait()

    for rid in ("v2", "v4"):
        r = held[rid][1].get("response")
        assert r is not None and r.status == 200 and f"held release={rid} inc={rid} file=static release={rid}" in r.text, \
            (rid, r and r.status, r and r.text)
    failed = [r for r in result.records if r["status"] != 200]
    torn = [r for r in result.records if r["path"] in ("/version.php", "/hold.php?flag=none") and
            release_id(r["body"]) is None]
    # Stale: a request that started after a cap run returned answered from
    # neither the release that run made current nor the one the next run
    # (perhaps already flipping) makes current.
    order = [("v2", "v2"), ("v3", "v3"), ("v4", "v4"), ("v3-again", "v3"), ("v5", "v5")]
    stale = []
    for rec in result.records:
        if rec["path"] != "/version.php" or rec["status"] != 200:
            continue
        before = [i for i, (key, _rid) in enumerate(order) if rec["start"] > returned_at[key]]
        if before:
            allowed = {rid for _key, rid in order[before[-1]:before[-1] + 2]}
            if release_id(rec["body"]) not in allowed:
                stale.append((allowed, rec))
    print(f"{mode}: {result.summary()}: failed {len(failed)}, stale {len(stale)}, torn {len(torn)}; "
          f"rollback took {waited:.1f}s")
    assert (len(failed), len(stale), len(torn)) == (0, 0, 0), (failed[:3], stale[:3], torn[:3])
    assert len(result.records) > 500
