"""fpm-replica-helper, the real binary, run as root: php-fpm masters in their
own mount namespaces serving different releases at one stable path, without
CAP_SYS_ADMIN; every unsafe input refused with exit code 2."""

import os
import re
import shutil
import subprocess

import pytest

import harness
from releases import make_release, write_helper_conf

CAP_SYS_ADMIN = 21


@pytest.fixture
def setup(httpd):
    app = os.path.join(httpd.root, "app")
    r1 = make_release(app, "r1")
    r2 = make_release(app, "r2")
    live = os.path.join(app, "live")
    os.makedirs(live)
    conf = write_helper_conf(os.path.join(httpd.root, "conf", "helper.conf"),
                             f"{app}/releases", live)
    return {"app": app, "r1": r1, "r2": r2, "live": live, "conf": conf}


def spawn_args(setup, release, *extra, stable=None, conf=None):
    return [harness.HELPER, "spawn", "--config", conf or setup["conf"], "--release", release,
            "--stable-path", stable or setup["live"], *extra, "--"]


def fcgi_get(sock, script, docroot):
    env = {"SCRIPT_FILENAME": script, "DOCUMENT_ROOT": docroot, "REQUEST_METHOD": "GET",
           "SCRIPT_NAME": "/version.php", "REQUEST_URI": "/version.php", "QUERY_STRING": "",
           "SERVER_NAME": "localhost", "SERVER_PROTOCOL": "HTTP/1.1", "GATEWAY_INTERFACE": "CGI/1.1",
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run(["cgi-fcgi", "-bind", "-connect", sock], env=env, capture_output=True,
                         text=True, timeout=10)
    return out.stdout


def cap_mask(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1], 16)
    raise KeyError(field)


def test_two_masters_serve_two_releases_at_one_stable_path(httpd, setup):
    a = httpd.start_fpm("a", wrapper=spawn_args(setup, setup["r1"]))
    b = httpd.start_fpm("b", wrapper=spawn_args(setup, setup["r2"], "--read-only"))
    live = setup["live"]
    script = f"{live}/public/version.php"
    out_a = fcgi_get(httpd.sock("a"), script, f"{live}/public")
    out_b = fcgi_get(httpd.sock("b"), script, f"{live}/public")
    assert "release=r1 inc=r1" in out_a, out_a
    assert "release=r2 inc=r2" in out_b, out_b
    # The host's stable path stays empty: the mounts live in the namespaces.
    assert os.listdir(live) == []
    # Which release each master serves, read from its mount namespace.
    for fpm, release in ((a, setup["r1"]), (b, setup["r2"])):
        r = subprocess.run([harness.HELPER, "inspect", "--pid", str(fpm.pid), "--stable-path", live],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 0 and r.stdout.strip() == release, r.stdout + r.stderr
        # php-fpm's master kept what it needs and nothing like CAP_SYS_ADMIN.
        for field in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"):
            assert not cap_mask(fpm.pid, field) >> CAP_SYS_ADMIN & 1, field
        assert cap_mask(fpm.pid, "CapBnd") == sum(1 << c for c in (0, 1, 5, 6, 7))
        with open(f"/proc/{fpm.pid}/status") as f:
            assert re.search(r"NoNewPrivs:\s+1", f.read())
    # Neither replica can write into its release: read-only is the default,
    # and --read-only (b) is accepted and changes nothing.
    for fpm in (a, b):
        assert "Read-only file system" in subprocess.run(
            ["nsenter", "-t", str(fpm.pid), "-m", "touch", f"{live}/x"],
            capture_output=True, text=True).stderr
        with open(f"/proc/{fpm.pid}/mountinfo") as f:
            options = [l.split()[5] for l in f if l.split()[4] == live]
        assert len(options) == 1 and {"ro", "nosuid", "nodev"} <= set(options[0].split(",")), options


def test_writable_release_only_when_the_configuration_says_so(httpd, setup):
    with open(setup["conf"], "a") as f:
        f.write("writable-release yes\n")
    r = subprocess.run(spawn_args(setup, setup["r1"]) + [
        "/bin/sh", "-c", f"touch {setup['live']}/written && grep ' {setup['live']} ' /proc/self/mountinfo"],
        capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    options = set(r.stdout.split()[5].split(","))
    assert "rw" in options and {"nosuid", "nodev"} <= options, r.stdout
    assert os.path.exists(os.path.join(setup["r1"], "written"))
    assert os.listdir(setup["live"]) == []


def test_only_allow_listed_environment_reaches_the_command(httpd, setup):
    env = {"FPM_REPLICA_NAME": "x", "LD_PRELOAD": "", "SECRET": "s3cret", "PATH": "/usr/bin:/bin",
           "LANG": "C.UTF-8", "PHPRC": "/tmp", "HOME": "/root"}
    r = subprocess.run(spawn_args(setup, setup["r1"]) + ["/usr/bin/env"], env=env,
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    names = sorted(line.split("=", 1)[0] for line in r.stdout.splitlines())
    assert names == ["FPM_REPLICA_NAME", "LANG", "PATH"]


def unsafe_cases(setup, tmp):
    app, live, conf = setup["app"], setup["live"], setup["conf"]
    outside = os.path.join(tmp, "outside")
    os.makedirs(outside, exist_ok=True)
    os.symlink(outside, os.path.join(app, "releases", "escape"))
    os.symlink(live, os.path.join(app, "live-link"))
    with open(os.path.join(app, "releases", "afile"), "w") as f:
        f.write("x")
    bad_owner = os.path.join(tmp, "bad-owner.conf")
    bad_mode = os.path.join(tmp, "bad-mode.conf")
    bad_line = os.path.join(tmp, "bad-line.conf")
    for path, text in ((bad_owner, open(conf).read()), (bad_mode, open(conf).read()),
                       (bad_line, open(conf).read() + "mount-anything /\n")):
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
    os.chown(bad_owner, 1000, 1000)
    os.chmod(bad_mode, 0o666)
    h = harness.HELPER
    return [
        ([h, "spawn", "--config", conf, "--release", "releases/r1", "--stable-path", live, "--", "true"],
         "is not an absolute path"),
        ([h, "spawn", "--config", conf, "--release", f"{app}/releases/../releases/r1", "--stable-path", live, "--", "true"],
         "contains '..'"),
        (spawn_args(setup, f"{app}/releases/missing") + ["true"], "does not exist"),
        (spawn_args(setup, f"{app}/releases/afile") + ["true"], "is not a directory"),
        (spawn_args(setup, f"{app}/releases/escape") + ["true"], "has a symlink in it"),
        (spawn_args(setup, "/etc") + ["true"], "outside every release-root"),
        (spawn_args(setup, f"{app}/releases") + ["true"], "outside every release-root"),
        (spawn_args(setup, setup["r1"], stable=f"{app}/other") + ["true"], "is not a stable-path of the configuration"),
        (spawn_args(setup, setup["r1"], stable=f"{app}/live-link") + ["true"], "is not a stable-path of the configuration"),
        (spawn_args(setup, setup["r1"], conf=bad_owner) + ["true"], "is not owned by root"),
        (spawn_args(setup, setup["r1"], conf=bad_mode) + ["true"], "is writable by group or others"),
        (spawn_args(setup, setup["r1"], conf=bad_line) + ["true"], "unknown keyword 'mount-anything'"),
        (spawn_args(setup, setup["r1"]), "no command after '--'"),
        ([h, "spawn", "--config", conf, "--release", setup["r1"], "--", "true"], "--stable-path DIR is required"),
        ([h, "explode"], "usage:"),
    ]


def test_unsafe_inputs_are_refused_with_exit_2(httpd, setup):
    cases = unsafe_cases(setup, httpd.root)
    assert len(cases) >= 10
    for argv, message in cases:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        assert r.returncode == 2, (argv, r.stdout, r.stderr)
        assert r.stderr.startswith("fpm-replica-helper: ") and message in r.stderr, (argv, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert os.listdir(setup["live"]) == []


def test_stable_path_inside_a_release_root_is_refused(httpd, setup):
    inner = os.path.join(setup["app"], "releases", "live")
    os.makedirs(inner)
    with open(setup["conf"], "a") as f:
        f.write(f"stable-path {inner}\n")
    r = subprocess.run(spawn_args(setup, setup["r1"], stable=inner) + ["true"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "lies inside release-root" in r.stderr, r.stderr


def as_www_data():
    os.setgid(33)
    os.setuid(33)


def test_unprivileged_caller_cannot_choose_its_config(httpd, setup):
    r = subprocess.run(spawn_args(setup, setup["r1"]) + ["true"], capture_output=True, text=True,
                       timeout=10, preexec_fn=as_www_data)
    assert r.returncode == 2
    assert r.stderr.strip() == "fpm-replica-helper: --config is accepted only from root (real uid 0)"


def test_inspect_refuses_bad_input(httpd, setup):
    for argv in (["--pid", "abc", "--stable-path", setup["live"]],
                 ["--pid", "1", "--stable-path", "relative"],
                 ["--pid", "999999999", "--stable-path", setup["live"]]):
        r = subprocess.run([harness.HELPER, "inspect", *argv], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 2, (argv, r.stderr)


def test_file_capability_install_for_a_non_root_operator(httpd, setup):
    """The helper installed with file capabilities, run by www-data: it uses
    its default configuration (a test path in this build), mounts the
    release, and the command runs as www-data without capabilities."""
    conf = "/tmp/fpmr-tests/helper-testconf.conf"
    binary = os.path.join(httpd.root, "fpm-replica-helper")
    try:
        with open(conf, "w") as f:
            f.write(open(setup["conf"]).read())
        os.chmod(conf, 0o644)
        shutil.copy(harness.HELPER + "-testconf", binary)
        os.chmod(binary, 0o755)
        subprocess.run(["setcap", "cap_sys_admin,cap_setpcap,cap_setuid,cap_setgid,cap_chown,"
                        "cap_kill,cap_dac_override+ep", binary], check=True, timeout=10)
        argv = [binary, "spawn", "--release", setup["r1"], "--stable-path", setup["live"], "--",
                "/bin/sh", "-c", f"id -u; ls {setup['live']}/public; grep CapEff /proc/self/status"]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10, preexec_fn=as_www_data)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.split()
        assert lines[0] == "33"
        assert "version.php" in lines
        assert lines[-2:] == ["CapEff:", "0000000000000000"]
        # With file capabilities a non-root caller still cannot pick a configuration.
        r = subprocess.run([binary, "spawn", "--config", setup["conf"], "--release", setup["r1"],
                            "--stable-path", setup["live"], "--", "true"],
                           capture_output=True, text=True, timeout=10, preexec_fn=as_www_data)
        assert r.returncode == 2 and "--config is accepted only from root" in r.stderr
        assert os.listdir(setup["live"]) == []
    finally:
        if os.path.exists(conf):
            os.unlink(conf)
