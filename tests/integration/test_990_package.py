"""The Debian package, built from this tree with dpkg-buildpackage
(debian/build-deb.sh), checked three ways: its contents and maintainer
scripts as files, with lintian; installed with apt into a throwaway copy of a
clean Debian 12 root made with debootstrap (tests/clean-root.sh, run by
tests/setup.sh, which also downloads what gets installed here: no network in
these tests), where the maintainer scripts, a2enmod/a2dismod, apachectl
configtest with the shipped sample vhosts, an upgrade, removal and purge run
for real; and, in another copy, the container image's own steps
(docker/Dockerfile's demo stage, docker/setup-image.sh, the entrypoint), which
then serves the demo site, deploys and restarts under load."""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
import urllib.request

import pytest

import harness
from conftest import TEST_ROOT_BASE
from overlay_root import OverlayRoot

PACKAGE = "libapache2-mod-fpm-replica"
MODULES_DIR = harness.apxs_query("LIBEXECDIR")
INSTALLED_FILES = {
    # path: mode
    f"{MODULES_DIR}/mod_fpm_replica.so": 0o644,
    "/usr/libexec/fpm-replica-helper": 0o755,
    "/usr/bin/fpm-replica": 0o755,
    "/etc/apache2/mods-available/fpm_replica.load": 0o644,
    "/etc/apache2/mods-available/fpm_replica.conf": 0o644,
    "/etc/fpm-replica/helper.conf": 0o644,
    "/usr/share/fpm-replica/warmup.php": 0o644,
    "/usr/lib/tmpfiles.d/libapache2-mod-fpm-replica.conf": 0o644,
    "/usr/share/doc/libapache2-mod-fpm-replica/examples/fpm-replica-realpath.conf": 0o644,
    "/usr/share/doc/libapache2-mod-fpm-replica/examples/fpm-replica-namespace.conf": 0o644,
    "/usr/share/doc/libapache2-mod-fpm-replica/examples/php-fpm-replica.conf": 0o644,
    # The monitoring examples (docs/monitoring.md), uncompressed (compat 13).
    "/usr/share/doc/libapache2-mod-fpm-replica/examples/fpm-replica-dashboard.json": 0o644,
    "/usr/share/doc/libapache2-mod-fpm-replica/examples/fpm-replica-alerts.yml": 0o644,
    "/usr/share/doc/libapache2-mod-fpm-replica/examples/fpm-replica-alerts.test.yml": 0o644,
    # The fleet rollout (docs/operations.md, section 9): contrib/ansible and contrib/haproxy.
    "/usr/share/doc/libapache2-mod-fpm-replica/examples/ansible/rollout.yml": 0o644,
    "/usr/share/doc/libapache2-mod-fpm-replica/examples/ansible/roles/fpm_replica_release/defaults/main.yml": 0o644,
    "/usr/share/doc/libapache2-mod-fpm-replica/examples/ansible/roles/fpm_replica_release/vars/main.yml": 0o644,
    "/usr/share/doc/libapache2-mod-fpm-replica/examples/ansible/roles/fpm_replica_release/tasks/copy.yml": 0o644,
    "/usr/share/doc/libapache2-mod-fpm-replica/examples/ansible/roles/fpm_replica_release/tasks/deploy.yml": 0o644,
    "/usr/share/doc/libapache2-mod-fpm-replica/examples/haproxy.cfg": 0o644,
    "/usr/share/doc/libapache2-mod-fpm-replica/copyright": 0o644,
    # Where the installed README's links find them.
    "/usr/share/doc/libapache2-mod-fpm-replica/docs/operations.md": 0o644,
}
CONFFILES = {"/etc/apache2/mods-available/fpm_replica.load",
             "/etc/apache2/mods-available/fpm_replica.conf",
             "/etc/fpm-replica/helper.conf"}
# a2enmod fpm_replica enables these through the .load file's "# Depends:".
MODULE_LINKS = ["fpm_replica.load", "fpm_replica.conf", "proxy.load", "proxy_fcgi.load",
                "proxy_balancer.load", "slotmem_shm.load"]


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


@pytest.fixture(scope="module")
def package(clean_root):
    """The package, built as docker/Dockerfile's build stage builds it: this
    source tree copied to /src of a clean Debian 12 root, then
    `bash debian/build-deb.sh /dist` there, which installs the build
    dependencies itself (from the clean root's cache: no network).

    With DEB_BUILD_OPTIONS=nocheck: the unit tests build and run as ctest's
    `unit` test of the same run, from the same sources, and building them a
    second time here took about 100 s of the suite's time. The Dockerfile's
    build stage still builds and runs them in the package build."""
    os.makedirs(TEST_ROOT_BASE, exist_ok=True)
    out = tempfile.mkdtemp(prefix="package-", dir=TEST_ROOT_BASE)
    builder = OverlayRoot(os.path.join(out, "build-root"), clean_root)
    try:
        builder.put_source_tree(harness.SOURCE_DIR, "/src")
        build = builder.run("cd /src && DEB_BUILD_OPTIONS=nocheck bash debian/build-deb.sh /dist",
                            timeout=900)
        assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
        for deb in glob.glob(builder.path("/dist/*.deb")):
            shutil.copy(deb, out)
    finally:
        builder.kill_processes()
        builder.remove()
    debs = glob.glob(os.path.join(out, f"{PACKAGE}_*.deb"))
    assert len(debs) == 1, os.listdir(out)
    yield debs[0]
    shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module")
def clean_root():
    """The clean Debian 12 root (prepared by tests/setup.sh; prepared here
    if it is missing, which needs the network)."""
    prepare = subprocess.run(["bash", os.path.join(harness.SOURCE_DIR, "tests", "clean-root.sh")],
                             capture_output=True, text=True, timeout=600)
    assert prepare.returncode == 0, prepare.stdout + prepare.stderr
    return "/var/cache/mod-fpm-replica/bookworm"


@pytest.fixture
def overlay(clean_root):
    os.makedirs(TEST_ROOT_BASE, exist_ok=True)
    root = OverlayRoot(tempfile.mkdtemp(prefix="overlay-", dir=TEST_ROOT_BASE), clean_root)
    yield root
    root.kill_processes()
    root.remove()


# apt in a copy of the clean root, which has no network there (OverlayRoot.run):
# it installs from the .debs tests/clean-root.sh downloaded. (Not with
# --no-download: apt 2.6 then fails on a local .deb, "Pathname to install is
# not absolute".)
APT_INSTALL = "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "


def test_package_holds_the_module_helper_cli_and_config(package):
    listing = run(["dpkg-deb", "--contents", package]).stdout
    modes = {}
    for line in listing.splitlines():
        perms, owner, _size, _date, _time, path = line.split(None, 5)
        modes[path.lstrip(".")] = (perms, owner)
    for path, mode in INSTALLED_FILES.items():
        assert path in modes, f"{path} missing from the package:\n{listing}"
        perms, owner = modes[path]
        assert owner == "root/root", (path, owner)
        expected = "-" + "".join(
            c if mode & (1 << (8 - i)) else "-" for i, c in enumerate("rwxrwxrwx"))
        assert perms == expected, (path, perms, expected)
    # Nothing setuid or setgid: the helper is run by root or given file capabilities.
    assert not [p for p, (perms, _) in modes.items() if perms[3] in "sS" or perms[6] in "sS"]

    info = run(["dpkg-deb", "--field", package, "Depends", "Recommends", "Section"]).stdout
    assert "apache2-api-20120211" in info and "php-fpm" in info and "libcurl4" in info
    assert "python3" not in info  # fpm-replica is a C++ program (cli/)
    assert "Section: httpd" in info

    with tempfile.TemporaryDirectory(dir=TEST_ROOT_BASE) as tmp:
        run(["dpkg-deb", "--control", package, f"{tmp}/control"]).check_returncode()
        with open(f"{tmp}/control/conffiles") as f:
            assert set(f.read().split()) == CONFFILES
        with open(f"{tmp}/control/postinst") as f:
            assert re.search(r"apache2_invoke enmod \$conf|enmod fpm_replica", f.read())
        with open(f"{tmp}/control/prerm") as f:
            assert "dismod" in f.read()
        run(["dpkg-deb", "--extract", package, f"{tmp}/files"]).check_returncode()
        with open(f"{tmp}/files/etc/apache2/mods-available/fpm_replica.load") as f:
            load = f.read()
        assert "# Depends: proxy_fcgi proxy_balancer slotmem_shm" in load
        assert f"LoadModule fpm_replica_module {MODULES_DIR}/mod_fpm_replica.so" in load
        with open(f"{tmp}/files/etc/fpm-replica/helper.conf") as f, \
                open(os.path.join(harness.SOURCE_DIR, "conf", "helper.conf")) as g:
            assert f.read() == g.read()
        # The packaged module is a module httpd can load: it exports the
        # module record and nothing of ours leaks beyond it.
        syms = run(["nm", "-D", "--defined-only",
                    f"{tmp}/files{MODULES_DIR}/mod_fpm_replica.so"]).stdout
        assert re.search(r"\bfpm_replica_module\b", syms), syms


def module_links(root):
    return root.run("cd /etc/apache2/mods-enabled && for f in "
                    + " ".join(MODULE_LINKS) + "; do [ -L $f ] && echo $f; done; true")


def test_install_enable_configtest_upgrade_remove_and_purge_in_a_clean_root(package, overlay):
    overlay.put(package, "/tmp/fpmr-package/" + os.path.basename(package))
    # As an operator would: apache2, php-fpm and the package in one apt run,
    # which resolves the package's own dependencies (libcurl4 is not in a
    # minimal Debian; python3 is not needed and stays out).
    install = overlay.run(APT_INSTALL + "apache2 php-fpm /tmp/fpmr-package/*.deb", timeout=300)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr
    state = overlay.run(f"dpkg-query -W -f '${{Status}}' {PACKAGE}; echo; "
                        "stat -c '%n %a %U' " + " ".join(INSTALLED_FILES))
    assert state.stdout.startswith("install ok installed"), state.stdout + state.stderr
    for path, mode in INSTALLED_FILES.items():
        assert f"{path} {mode:o} root" in state.stdout, (path, state.stdout)
    cli = overlay.run("fpm-replica --help; test ! -e /usr/bin/python3")
    assert cli.returncode == 0 and "deploy" in cli.stdout, cli.stdout + cli.stderr

    # Installing enabled it (dh_apache2's postinst), dependencies included,
    # and apache2 runs it: Debian's usual restart for a new module, or, when
    # apt configured apache2 after the module in the same run, apache2's own
    # first start (apache2_invoke asks for no restart of an unconfigured
    # apache2).
    assert module_links(overlay).stdout.split() == MODULE_LINKS
    with open(overlay.path("/var/log/dpkg.log")) as f:
        configured = [line.split()[4].split(":")[0] for line in f
                      if " status installed " in line]
    apache_after_us = configured.index("apache2") > configured.index(PACKAGE)
    wanted = "apache2 start" if apache_after_us else "apache2 restart"
    assert wanted in overlay.service_actions(), (configured, overlay.service_actions())
    asked = len(overlay.service_actions())
    # An upgrade (here: the same version configured again) asks for a reload,
    # `apachectl graceful`, which rolls the php-fpm replicas one by one.
    again = overlay.run("dpkg -i /tmp/fpmr-package/*.deb")
    assert again.returncode == 0, again.stdout + again.stderr
    assert overlay.service_actions()[asked:] == ["apache2 reload"], overlay.service_actions()
    off = overlay.run("a2dismod -q fpm_replica >/dev/null && ls /etc/apache2/mods-enabled")
    assert off.returncode == 0 and "fpm_replica" not in off.stdout, off.stdout + off.stderr
    on = overlay.run("a2enmod fpm_replica")
    assert on.returncode == 0 and "Enabling module fpm_replica" in on.stdout, on.stdout
    assert module_links(overlay).stdout.split() == MODULE_LINKS
    loaded = overlay.run("apache2ctl -M")
    for module in ("fpm_replica_module", "proxy_fcgi_module", "proxy_balancer_module",
                   "slotmem_shm_module"):
        assert f" {module} (shared)" in loaded.stdout, loaded.stdout + loaded.stderr

    # Each shipped sample vhost, as shipped, passes configtest.
    examples = f"/usr/share/doc/{PACKAGE}/examples"
    for sample in ("fpm-replica-realpath.conf", "fpm-replica-namespace.conf"):
        check = overlay.run(
            "set -e; mkdir -p /srv/app/releases/r1/public /srv/live/app; "
            "ln -sfn releases/r1 /srv/app/current; "
            f"zcat -f {examples}/{sample}* > /etc/apache2/sites-available/app.conf; "
            "a2ensite -q app; apache2ctl configtest 2>&1; a2dissite -q app")
        assert check.returncode == 0 and "Syntax OK" in check.stdout, (sample, check.stdout)
        assert "FPMR" not in check.stdout, (sample, check.stdout)

    # Remove keeps the conffiles and disables the module; purge takes the rest.
    removed = overlay.run(f"dpkg -r {PACKAGE}")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    left = overlay.run(f"ls /etc/apache2/mods-enabled /etc/fpm-replica {MODULES_DIR}")
    assert "fpm_replica" not in left.stdout, left.stdout
    assert "helper.conf" in left.stdout, left.stdout
    purged = overlay.run(f"dpkg -P {PACKAGE}")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    left = overlay.run("ls /etc/apache2/mods-available; ls /etc/fpm-replica 2>&1")
    assert "fpm_replica" not in left.stdout, left.stdout
    assert "No such file or directory" in left.stdout, left.stdout
    audit = overlay.run("dpkg --audit")
    assert audit.returncode == 0 and not audit.stdout.strip(), audit.stdout + audit.stderr


def get(port, path, timeout=5):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except Exception as e:  # noqa: BLE001 - any failure means "not yet"
        return 0, "", str(e)


def release_served(port):
    status, _, body = get(port, "/")
    m = re.search(r'id="release">([^<]+)<', body) if status == 200 else None
    return m.group(1) if m else None


def test_container_steps_serve_deploy_and_restart_in_a_clean_root(package, overlay):
    """docker/Dockerfile's demo stage, step by step, in a copy of the clean
    root (which is what debian:12 is): the same apt-get install, the same
    setup-image.sh, the same entrypoint."""
    overlay.put(package, "/tmp/fpm-replica-deb/" + os.path.basename(package))
    overlay.put(os.path.join(harness.SOURCE_DIR, "docker"), "/usr/local/share/fpm-replica-demo")
    with open(os.path.join(harness.SOURCE_DIR, "docker", "Dockerfile")) as f:
        dockerfile = f.read()
    assert "apache2 php-fpm curl" in dockerfile
    assert "setup-image.sh /tmp/fpm-replica-deb" in dockerfile
    apt = overlay.run(APT_INSTALL + "apache2 php-fpm curl", timeout=300)
    assert apt.returncode == 0, apt.stdout[-3000:] + apt.stderr
    setup = overlay.run("bash /usr/local/share/fpm-replica-demo/setup-image.sh "
                        "/tmp/fpm-replica-deb", timeout=180)
    assert setup.returncode == 0, setup.stdout + setup.stderr

    port = harness.free_port()
    env = dict(os.environ, FPMR_DEMO_LISTEN=f"127.0.0.1:{port}")
    log_path = os.path.join(overlay.base, "entrypoint.out")
    with open(log_path, "w") as out:
        httpd = overlay.start("exec /usr/local/bin/fpm-replica-entrypoint", env=env, stdout=out)
    replica_pids = set()
    load = None
    try:
        def replicas():
            status, _, body = get(port, "/fpm-replica-status")
            return json.loads(body)["replicas"] if status == 200 else []

        def all_ready():
            reps = replicas()
            replica_pids.update(r["pid"] for r in reps if r.get("pid"))
            return len(reps) == 2 and all(r["state"] == "ready" for r in reps)

        harness.wait_for(all_ready, 30, what="the demo's two replicas ready")
        assert release_served(port) == "demo-1"
        # The image's HEALTHCHECK command, as Docker would run it in the container.
        healthcheck = re.search(r"^  CMD (.*)$", dockerfile, re.M).group(1)
        healthy = overlay.run_beside(httpd.pid, healthcheck, env=env)
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        status, ctype, body = get(port, "/style.css")
        assert status == 200 and ctype.startswith("text/css") and "font-family" in body

        load = harness.start_load(port, [("/", 8), ("/style.css", 2)], 12,
                                  os.path.join(overlay.base, "load.tsv"))
        time.sleep(2)
        deploy = overlay.run_beside(
            httpd.pid, f"fpm-replica --url http://127.0.0.1:{port}/fpm-replica-status "
            "--timeout 30 deploy /srv/app/releases/demo-2", env=env, timeout=60)
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        assert release_served(port) == "demo-2"
        before = {r["name"]: r["pid"] for r in replicas()}
        graceful = overlay.run_beside(httpd.pid, "apachectl graceful", env=env)
        assert graceful.returncode == 0, graceful.stdout + graceful.stderr
        harness.wait_for(lambda: all_ready() and all(
            r["pid"] != before[r["name"]] for r in replicas()), 30,
            what="every replica replaced after apachectl graceful")
        result = load.wait()
        assert not result.failures(), result.summary()
        assert len(result.records) > 500, result.summary()
        bodies = {re.search(r'id="release">([^<]+)<', r["body"]).group(1)
                  for r in result.records if r["path"] == "/"}
        assert bodies == {"demo-1", "demo-2"}, bodies
    finally:
        if load:
            load.kill()
        if httpd.poll() is None:
            httpd.send_signal(signal.SIGWINCH)   # what `docker stop` sends
            try:
                httpd.wait(timeout=30)
            except subprocess.TimeoutExpired:
                httpd.kill()
                httpd.wait()
        leftover = [pid for pid in replica_pids if harness.pid_alive(pid)]
        overlay.kill_processes()   # whatever still runs in the copy, by PID
    assert httpd.returncode == 0
    assert not leftover, f"replica masters outlived httpd: {leftover}"
    with open(overlay.path("/var/log/apache2/error.log"), errors="replace") as f:
        unexpected = harness.unexpected_log_lines(f.read(), [])
    assert not unexpected, "\n".join(unexpected[:20])


# Every shell block of docs/operations.md marked `<!-- operations-test: NAME -->`,
# by name, dedented (blocks inside list items are indented).
OPERATIONS_BLOCK = re.compile(r"<!-- operations-test: ([\w-]+) -->\n[ \t]*```sh\n(.*?)\n[ \t]*```", re.S)
# The guide's order, except "without-systemd" (section 2's box for hosts
# without systemd), whose last line stops apache2: it runs last.
OPERATIONS_ORDER = ["install", "php-fpm", "vhost", "load", "check", "deploy", "lifecycle", "rollback",
                    "restarts", "without-systemd"]
RELEASES = ["2026-11-23T0801", "2026-11-24T0930", "2026-11-25T1400"]

# A stand-in for systemd, which the clean root (no init) does not run: the
# unit actions the guide uses, done the way Debian's apache2.service does them.
SYSTEMCTL = """#!/bin/sh
case "$1 $2" in
  "reload apache2") exec apachectl graceful ;;
  "start apache2") exec apachectl start ;;
  *) echo "systemctl stand-in: '$*' is not one the operations guide uses" >&2; exit 1 ;;
esac
"""


def operations_blocks():
    with open(os.path.join(harness.SOURCE_DIR, "docs", "operations.md")) as f:
        found = OPERATIONS_BLOCK.findall(f.read())
    return [(name, textwrap.dedent(body)) for name, body in found]


def test_operations_guide_runs_as_written_in_a_clean_root(package, overlay):
    """docs/operations.md, followed literally on a clean Debian 12 root with
    the shipped realpath sample: every marked block runs as written, in the
    guide's order, and does what the guide says. The operator's parts that
    are not commands are done here: the answer "Y" apt asks for, the
    application's releases (section 2.1's layout), systemd (SYSTEMCTL), which
    starts apache2 once it is installed."""
    blocks = dict(operations_blocks())
    assert sorted(blocks) == sorted(OPERATIONS_ORDER)
    deb = "/tmp/" + os.path.basename(package)
    assert deb in blocks["install"], "the guide must name the package this tree builds"
    overlay.put(package, deb)
    stand_ins = os.path.join(overlay.base, "stand-ins")
    os.makedirs(stand_ins)
    with open(os.path.join(stand_ins, "systemctl"), "w") as f:
        f.write(SYSTEMCTL)
    os.chmod(os.path.join(stand_ins, "systemctl"), 0o755)
    overlay.put(os.path.join(stand_ins, "systemctl"), "/usr/local/sbin/systemctl")
    with open(os.path.join(stand_ins, "assume-yes"), "w") as f:
        f.write('APT::Get::Assume-Yes "true";\n')
    overlay.put(os.path.join(stand_ins, "assume-yes"), "/etc/apt/apt.conf.d/99operator-says-yes")
    for rid in RELEASES:
        public = os.path.join(stand_ins, "app", "releases", rid, "public")
        os.makedirs(public)
        with open(os.path.join(public, "index.php"), "w") as f:
            f.write("<?php echo 'release=', basename(dirname(__DIR__)), \"\\n\";\n")
    os.symlink("releases/" + RELEASES[0], os.path.join(stand_ins, "app", "current"))
    overlay.put(os.path.join(stand_ins, "app"), "/srv/app")
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
           "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
    host = overlay.start("exec sleep 900", own_network=True)
    try:
        # Mounted and entered once its root is the copy (sleep runs there).
        harness.wait_for(lambda: os.readlink(f"/proc/{host.pid}/root") == overlay.merged, 10,
                         what="the clean root copy mounted")
        def sh(script, timeout=300):
            r = overlay.run_beside(host.pid, "set -e\n" + script, timeout=timeout, env=env)
            assert r.returncode == 0, f"{script}\n--- stdout\n{r.stdout[-3000:]}\n--- stderr\n{r.stderr[-3000:]}"
            return r

        def site(path="/"):
            return sh(f"curl -sS -H 'Host: app.example.org' http://127.0.0.1{path}").stdout

        def replicas_ready():
            doc = json.loads(site("/fpm-replica-status") or "{}")
            reps = doc.get("replicas", [])
            return doc if len(reps) == 2 and all(r["state"] == "ready" for r in reps) else None

        sh(blocks["install"])
        sh("apachectl start")   # what systemd does for a newly installed apache2
        for name in ("php-fpm", "vhost", "load"):
            sh(blocks[name])
        harness.wait_for(replicas_ready, 30, what="the sample's replicas ready")
        check = sh(blocks["check"]).stdout
        assert check.splitlines()[0] == "200", check
        assert "vhost app.example.org:80" in check and "FPMR" in check, check
        assert site() == f"release={RELEASES[0]}\n"

        sh(blocks["deploy"])
        assert site() == f"release={RELEASES[1]}\n"
        lifecycle = sh(blocks["lifecycle"], timeout=120).stdout
        assert f"watched /srv/app/releases/{RELEASES[2]} for 10s" in lifecycle, lifecycle
        assert f"deleted /srv/app/releases/{RELEASES[0]}" in lifecycle, lifecycle
        assert site() == f"release={RELEASES[2]}\n"
        sh(blocks["rollback"])
        assert site() == f"release={RELEASES[1]}\n"
        before = {r["name"]: r["pid"] for r in replicas_ready()["replicas"]}
        sh(blocks["restarts"])
        # The reload's rolling restart goes on after the block returns
        # (only `restart a` waits): wait for both replacements.
        def replaced():
            doc = replicas_ready()
            return doc if doc and all(r["pid"] != before[r["name"]] for r in doc["replicas"]) else None
        after = harness.wait_for(replaced, 60, what="both replicas replaced after the restarts")
        assert all(r["admin"] == "active" for r in after["replicas"])

        sh(blocks["without-systemd"])
        harness.wait_for(lambda: sh("test -e /var/run/apache2/apache2.pid && echo running || echo stopped")
                         .stdout.strip() == "stopped", 60, what="apache2 stopped by graceful-stop")
    finally:
        overlay.kill_processes()
        if host.poll() is None:
            host.kill()
        host.wait()
    with open(overlay.path("/var/log/apache2/error.log"), errors="replace") as f:
        log = f.read()
    assert "NOTICE: fpm is running" in log   # the masters log where the guide says
    unexpected = harness.unexpected_log_lines(log, [])
    assert not unexpected, "\n".join(unexpected[:20])


def test_lintian_finds_no_error(package):
    """Debian's own package checker: no error, and no warning beyond the two
    accepted ones (an initial upload closes no bug in Debian's tracker)."""
    checked = run(["lintian", "--no-tag-display-limit", package])
    out = checked.stdout
    # lintian exits non-zero on errors, and when it fails to run at all.
    assert checked.returncode == 0, out + checked.stderr
    findings = [line for line in out.splitlines() if re.match(r"^[EW]: ", line)]
    accepted = ("initial-upload-closes-no-bugs",)
    assert not [f for f in findings if not any(a in f for a in accepted)], out
