"""A release rolled across a fleet with the shipped playbook
(contrib/ansible/rollout.yml, Debian's ansible) behind the shipped HAProxy
configuration (contrib/haproxy/haproxy.cfg, Debian's haproxy), on loopback:
three httpd instances, each its own ServerRoot, port and releases directory,
supervised replicas in realpath mode, FpmReplicaProbe as HAProxy's health
check and FpmReplicaAssetFallback; the hosts are ansible_connection=local.

Under load through HAProxy (PHP pages, the hashed assets of the old and the
new release, seconds-long requests): r2 rolled over the three hosts fails no
request, misses no asset, serves no stale or torn page, and leaves every
host on r2. Then r3, which needs a setting host 2's configuration lacks (its
health page answers 500 there): the playbook fails, host 1 is on r3, host 2
was flipped back to r2, host 3 holds r3 but never flipped, and still no
request failed. Run again once host 2 is fixed, the playbook leaves host 1
as it is (a no-op) and finishes the rollout. A host that is down while r4
is copied stops the run before any host flips. Last, a host whose replicas
are all drained answers 503 on the probe lane and HAProxy takes it out."""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import time

import pytest

import harness
from releases import flip, make_release
from test_800_supervision import all_ready
from vhosts import pinned_vhost

PLAYBOOK = os.path.join(harness.SOURCE_DIR, "contrib", "ansible", "rollout.yml")
HAPROXY_CFG = os.path.join(harness.SOURCE_DIR, "contrib", "haproxy", "haproxy.cfg")
HAPROXY = shutil.which("haproxy", path="/usr/sbin:/usr/bin:/sbin:/bin")
ANSIBLE_PLAYBOOK = shutil.which("ansible-playbook", path="/usr/bin:/bin")
VHOST = "app.test"
SLOW = "/slow-page.php?ms=1500"
POLL = 0.02  # seconds between two looks at the hosts' release symlinks
RELEASES = ("r1", "r2", "r3")
# Each load client's pause after every response: enough load to catch a
# failure at any moment of a rollout (about 600 requests a second), and CPU
# left on two cores for ansible, which runs a Python process per task.
PAUSE_MS = 4

# The application's health page, the playbook's check URL. r3 needs a queue
# setting in the host's shared/config.php (outside the releases, managed per
# host), which host 2's configuration lacks.
HEALTH_PHP = """<?php
header('Content-Type: text/plain');
if (@NEEDS_QUEUE@) {
    $config = __DIR__ . '/../../../shared/config.php';
    $settings = is_file($config) ? include $config : [];
    if (empty($settings['queue'])) {
        http_response_code(500);
        echo "unhealthy release=@RID@: shared/config.php has no queue setting\\n";
        exit;
    }
}
echo "healthy release=@RID@\\n";
"""
# A seconds-long page that says which release and host answered it.
SLOW_PAGE_PHP = """<?php
include __DIR__ . '/slow.php';
echo 'release=@RID@ docroot={', $_SERVER['DOCUMENT_ROOT'], "}\\n";
"""


def asset(rid):
    """The release's content-hashed asset, as a build tool names it."""
    return f"/assets/app.{hashlib.sha1(rid.encode()).hexdigest()[:8]}.js"


def asset_body(rid):
    return f"console.log('{rid}');"


def build_release(app, rid):
    path = make_release(app, rid)
    public = os.path.join(path, "public")
    os.makedirs(os.path.join(public, "assets"), exist_ok=True)
    os.chmod(os.path.join(public, "assets"), 0o755)
    files = {asset(rid).lstrip("/"): asset_body(rid) + "\n",
             "health.php": HEALTH_PHP.replace("@RID@", rid).replace(
                 "@NEEDS_QUEUE@", "true" if rid == "r3" else "false"),
             "slow-page.php": SLOW_PAGE_PHP.replace("@RID@", rid)}
    for name, text in files.items():
        with open(os.path.join(public, name), "w") as f:
            f.write(text)
    return path


def release_archive(controller, rid):
    """The release as CI hands it over: an archive of its directory."""
    path = build_release(controller, rid)
    archive = os.path.join(controller, f"{rid}.tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(path, arcname=".")
    return archive


def write_shared_config(app, queue):
    shared = os.path.join(app, "shared")
    os.makedirs(shared, exist_ok=True)
    os.chmod(shared, 0o755)
    with open(os.path.join(shared, "config.php"), "w") as f:
        f.write("<?php return " + ("['queue' => 'redis://127.0.0.1:6379/2'];\n" if queue else "[];\n"))


class Host:
    """One web host of the fleet: an httpd with its own server root and
    releases, supervised replicas on the release behind app/current."""

    def __init__(self, name, httpd):
        self.name, self.httpd = name, httpd
        self.app = os.path.join(httpd.root, "app")
        self.current = os.path.join(self.app, "current")

    def start(self):
        build_release(self.app, "r1")
        flip(self.app, "releases/r1")
        write_shared_config(self.app, queue=self.name != "h2")
        self.httpd.write_config(pinned_vhost(self.httpd, self.app, status=True).spawn()
                                .probe("/healthz.php")
                                .add('FpmReplicaAssetFallback "^/assets/"'))
        self.httpd.start()

    def release_dir(self, rid):
        return os.path.join(os.path.realpath(self.app), "releases", rid)

    def on(self):
        return os.path.basename(os.readlink(self.current))

    def status(self):
        return self.httpd.status(headers={"Host": VHOST})

    def inventory(self):
        h = self.httpd
        return {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3",
                "fpm_replica_app": self.app, "fpm_replica_vhost": VHOST,
                "fpm_replica_status_url": h.url("/fpm-replica-status"),
                "fpm_replica_probe_url": h.url("/healthz.php"),
                "fpm_replica_check_urls": [h.url("/health.php")]}


# --- HAProxy, from the shipped file --------------------------------------------------------

def haproxy_config(root, port, hosts):
    """contrib/haproxy/haproxy.cfg with what this machine's loopback fleet
    needs instead of a production host's: its own stats socket, no chroot,
    user or syslog, the loopback port, the three hosts, the test vhost's
    name. Everything else (checks, timeouts, retries) as shipped."""
    with open(HAPROXY_CFG) as f:
        text = f.read()

    def sub(pattern, repl, count=1):
        nonlocal text
        text, n = re.subn(pattern, repl, text, flags=re.M)
        assert n == count, f"{pattern!r} matched {n} times in {HAPROXY_CFG}, not {count}"

    sub(r"^\s*(log /dev/log|chroot|user|group|daemon)\b.*\n", "", count=5)
    sub(r"^(\s*)stats socket .*$", rf"\1stats socket {root}/haproxy.sock mode 600 level admin")
    sub(r"^(\s*)bind :80$", rf"\1bind 127.0.0.1:{port}")
    sub(r"\bapp\.example\.org\b", VHOST)
    sub(r"^(\s*)server web(\d) 10\.0\.0\.1\d:80$",
        lambda m: f"{m.group(1)}server web{m.group(2)} 127.0.0.1:{hosts[int(m.group(2)) - 1].httpd.port}",
        count=3)
    path = os.path.join(root, "haproxy.cfg")
    with open(path, "w") as f:
        f.write(text)
    return path


class HAProxy:
    def __init__(self, root, hosts):
        self.root = root
        self.port = harness.free_port()
        self.cfg = haproxy_config(root, self.port, hosts)
        self.proc = None

    def start(self):
        for cfg in (HAPROXY_CFG, self.cfg):  # as shipped (Debian's haproxy user, chroot), and here
            check = subprocess.run([HAPROXY, "-c", "-f", cfg], capture_output=True, text=True,
                                   timeout=30)
            assert check.returncode == 0, cfg + ": " + check.stdout + check.stderr
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.cfg], stdin=subprocess.DEVNULL,
                                     stdout=open(os.path.join(self.root, "haproxy.log"), "w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        harness.wait_for(lambda: self.servers() or self.proc.poll() is not None, 10,
                         what="haproxy's stats socket")
        assert self.proc.poll() is None, self.log()
        return self

    def servers(self):
        """{server name: its row of `show stat`} of the backend app."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(os.path.join(self.root, "haproxy.sock"))
                s.sendall(b"show stat\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        except OSError:
            return None
        lines = data.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","))) for line in lines[1:] if line]
        return {r["svname"]: r for r in rows
                if r["pxname"] == "app" and r["svname"] not in ("FRONTEND", "BACKEND")}

    def all_up(self):
        servers = self.servers() or {}
        return len(servers) == 3 and all(r["status"] == "UP" and r["check_status"] == "L7OK"
                                         for r in servers.values())

    def log(self):
        with open(os.path.join(self.root, "haproxy.log"), errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


# --- the playbook --------------------------------------------------------------------------

def write_inventory(root, hosts, name="inventory.yml", **host_vars):
    """The fleet's inventory; host_vars: {host name: variables that replace its own}."""
    inventory = {"web": {"hosts": {h.name: dict(h.inventory(), **host_vars.get(h.name, {}))
                                   for h in hosts},
                         "vars": {"fpm_replica_cli": harness.CLI, "fpm_replica_timeout": 30,
                                  "fpm_replica_gate_retries": 2, "fpm_replica_gate_delay": 1}}}
    path = os.path.join(root, name)
    with open(path, "w") as f:
        json.dump(inventory, f, indent=1)  # JSON is YAML
    return path


def playbook(root, inventory, rid, src, *extra):
    """ansible-playbook in the background, quiet and fast: no facts, no
    retry files, no host key checks, its temporary files and home under the
    test root, no configuration file but its own (empty)."""
    base = os.path.join(root, "ansible")
    os.makedirs(base, exist_ok=True)
    config = os.path.join(base, "ansible.cfg")
    open(config, "w").close()
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": base, "LC_ALL": "C.UTF-8",
           "ANSIBLE_CONFIG": config, "ANSIBLE_HOME": base,
           "ANSIBLE_LOCAL_TEMP": os.path.join(base, "tmp-local"),
           "ANSIBLE_REMOTE_TEMP": os.path.join(base, "tmp-remote"),
           "ANSIBLE_RETRY_FILES_ENABLED": "false", "ANSIBLE_HOST_KEY_CHECKING": "false",
           "ANSIBLE_GATHERING": "explicit", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_PIPELINING": "true",
           "ANSIBLE_DEPRECATION_WARNINGS": "false", "ANSIBLE_SYSTEM_WARNINGS": "false",
           "ANSIBLE_FORKS": "3"}
    log = os.path.join(base, f"{rid}-{time.monotonic_ns()}.log")
    cmd = [ANSIBLE_PLAYBOOK, "-v", "-i", inventory, PLAYBOOK,
           "-e", f"fpm_replica_release={rid}", "-e", f"fpm_replica_release_src={src}", *extra]
    proc = subprocess.Popen(cmd, env=env, cwd=base, stdin=subprocess.DEVNULL,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    return proc, log


def wait_playbook(proc, log, watch, timeout=120, on_poll=None):
    """Polls the hosts (watch) until the playbook ends; returns (rc, output)."""
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"ansible-playbook still running after {timeout}s")
            watch.poll()
            if on_poll:
                on_poll()
            time.sleep(POLL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    watch.poll()
    with open(log, errors="replace") as f:
        return proc.returncode, f.read()


def brief(output):
    """What a failed assertion shows of a playbook's output: its failures
    and its recap (-v makes every task's result a long line)."""
    lines = output.splitlines()
    keep = [line[:600] for line in lines if re.match(r"(fatal|failed): ", line)]
    if "PLAY RECAP" in output:
        keep += ["PLAY RECAP"] + output.rsplit("PLAY RECAP", 1)[1].splitlines()[1:]
    return "\n".join(keep) or "\n".join(line[:300] for line in lines[-30:])


def recap(output):
    """{host: {ok: N, changed: N, failed: N, ...}} of the PLAY RECAP."""
    part = output.rsplit("PLAY RECAP", 1)[-1]
    return {m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
            for m in re.finditer(r"^(h\d)\s+:\s+(.*)$", part, flags=re.M)}


# --- what the hosts did, and what the clients got ----------------------------------------

class Watch:
    """The hosts' release symlinks, read every POLL seconds: each host's
    flips as (the last moment it was seen on the old release, the first on
    the new one, old, new)."""

    def __init__(self, hosts):
        self.hosts = hosts
        self.flips = {h.name: [] for h in hosts}
        self.last = {}  # host: (when its last look began, the release it saw)
        self.poll()

    def poll(self):
        for h in self.hosts:
            before = time.time()
            rid = h.on()
            after = time.time()
            if h.name in self.last and self.last[h.name][1] != rid:
                # The link changed after the previous look began and before
                # this one ended.
                self.flips[h.name].append((self.last[h.name][0], after, self.last[h.name][1], rid))
            self.last[h.name] = (before, rid)

    def windows(self, name):
        """[(release, from, to)]: when each release may have been current on
        host `name` (the flips' uncertainty included)."""
        out, start = [], 0.0
        for lo, hi, old, _new in self.flips[name]:
            out.append((old, start, hi))
            start = lo
        out.append((self.last[name][1], start, float("inf")))
        return out


PAGE = re.compile(r"release=(\w+) inc=(\w+) docroot=\{([^}]*)\} script=\{([^}]*)\}")
SLOW_BODY = re.compile(r"slow replica=\w+ ms=1500 release=(\w+) docroot=\{([^}]*)\}")


def served_by(hosts, docroot):
    for h in hosts:
        if docroot.startswith(os.path.realpath(h.app) + "/releases/"):
            return h, docroot[len(os.path.realpath(h.app) + "/releases/"):].split("/")[0]
    raise AssertionError(f"no host has {docroot}")


def check_load(hosts, watch, records):
    """Exact checks of every response through HAProxy; returns the figures."""
    failures = [r for r in records if harness.LoadResult.is_failure(r)]
    assert failures == [], f"{len(failures)} failed: {failures[:3]}"
    # A missing asset: a 404, or (as here and in Laravel's or Symfony's
    # public/.htaccess) the front controller's page instead of the file.
    assets = [r for r in records if r["path"].startswith("/assets/")]
    owner = {asset(rid): rid for rid in RELEASES}
    missing = [r for r in assets
               if r["status"] != 200 or r["body"].strip() != asset_body(owner[r["path"]])]
    assert missing == [], f"{len(missing)} of {len(assets)} asset requests missed: {missing[:3]}"
    figures = {"requests": len(records), "failed": 0, "asset_misses": 0, "assets": len(assets),
               "pages_by_host": {h.name: {} for h in hosts}, "slow_across_a_flip": 0}
    for r in records:
        if r["path"] == "/version.php":
            m = PAGE.search(r["body"])
            assert r["status"] == 200 and m, r
            rid, inc, docroot, script = m.groups()
            host, dir_rid = served_by(hosts, docroot)
            # Torn: the script, the file it includes, the document root and
            # the script's path must name one release.
            assert rid == inc == dir_rid and script == f"{docroot}/version.php", r
        elif r["path"] == SLOW:
            m = SLOW_BODY.search(r["body"])
            assert r["status"] == 200 and m, r
            rid, docroot = m.groups()
            host, dir_rid = served_by(hosts, docroot)
            assert rid == dir_rid, r
        else:
            continue
        # Stale: the release must be one the host's symlink named at some
        # moment while the request was in flight.
        assert any(w_rid == rid and r["start"] < w_to and r["end"] > w_from
                   for w_rid, w_from, w_to in watch.windows(host.name)), \
            (r, watch.flips[host.name])
        by_host = figures["pages_by_host"][host.name]
        by_host[rid] = by_host.get(rid, 0) + 1
        if r["path"] == SLOW and any(r["start"] < lo and hi < r["end"] and rid == old
                                     for lo, hi, old, _new in watch.flips[host.name]):
            figures["slow_across_a_flip"] += 1
    return figures


def assets_by_fallback(watch, records, new, old):
    """How many asset answers only the fallback could give: the new
    release's asset answered while every host was on the old release, and
    the old release's asset asked for once every host was on the new."""
    first_flip = min(f[0] for flips in watch.flips.values() for f in flips if f[3] == new)
    flipped = [f[1] for flips in watch.flips.values() for f in flips if f[3] == new]
    last_flip = max(flipped) if len(flipped) == len(watch.flips) else float("inf")
    early = sum(1 for r in records if r["path"] == asset(new) and r["end"] < first_flip)
    late = sum(1 for r in records if r["path"] == asset(old) and r["start"] > last_flip)
    return early, late


def start_loads(haproxy, root, old):
    out = os.path.join(root, "logs", f"load-{time.monotonic_ns()}.tsv")
    return harness.start_load(haproxy.port, [("/version.php", 2), (asset(old), 1), (SLOW, 3)],
                              duration=120, out=out, pause_ms=PAUSE_MS)


def rollout_under_load(hosts, haproxy, inventory, root, rid, src, old, *extra):
    """The playbook for `rid` under load through HAProxy. The new release's
    asset is asked for from the moment every host holds the release, or
    from the first flip if that comes first (from then on pages name it;
    a host without the release then answers 404). Returns (rc, output,
    watch, records, the playbook's seconds)."""
    watch = Watch(hosts)
    loads = [start_loads(haproxy, root, old)]

    def ask_new_asset():
        if len(loads) == 1 and (all(os.path.isdir(h.release_dir(rid)) for h in hosts) or
                                any(watch.last[h.name][1] == rid for h in hosts)):
            out = os.path.join(root, "logs", f"load-{rid}-asset.tsv")
            loads.append(harness.start_load(haproxy.port, [(asset(rid), 1)], duration=120, out=out,
                                            pause_ms=PAUSE_MS))

    try:
        time.sleep(0.5)
        started = time.monotonic()
        proc, log = playbook(root, inventory, rid, src, *extra)
        rc, output = wait_playbook(proc, log, watch, on_poll=ask_new_asset)
        seconds = time.monotonic() - started
        time.sleep(0.5)  # the old release's asset, once every host is on the new one
        for load in loads:
            load.stop()
        records = []
        for load in loads:
            records += load.wait().records
    finally:
        for load in loads:
            load.kill()
    assert len(loads) == 2, "the release reached no host:\n" + brief(output)
    return rc, output, watch, records, seconds


@pytest.fixture
def fleet(httpd, server_root):
    """Three hosts (the fixture's httpd and two more like it, inside its
    server root) behind HAProxy; every process stopped by PID at the end."""
    assert HAPROXY and ANSIBLE_PLAYBOOK, "Debian's haproxy and ansible packages are needed"
    servers = [httpd]
    haproxy = None
    try:
        for name in ("h2", "h3"):
            root = os.path.join(server_root, name)
            os.makedirs(root)
            os.chmod(root, 0o755)
            servers.append(harness.Httpd(root))
        hosts = [Host(f"h{i + 1}", s) for i, s in enumerate(servers)]
        for h in hosts:
            h.start()
        for h in hosts:
            harness.wait_for(lambda: all_ready(h.httpd), 20, what=f"{h.name}'s replicas ready")
        haproxy = HAProxy(server_root, hosts).start()
        yield hosts, haproxy
    finally:
        if haproxy:
            haproxy.stop()
        for s in servers[1:]:
            s.cleanup()
    for s in servers[1:]:
        unexpected = s.unexpected_log_lines()
        assert not unexpected, f"unexpected lines in {s.error_log}:\n" + "\n".join(unexpected[:20])


def test_a_release_rolls_across_the_fleet_and_a_failing_host_stops_it(fleet, server_root):
    hosts, haproxy = fleet
    h1, h2, h3 = hosts
    t0 = time.monotonic()
    harness.wait_for(haproxy.all_up, 15, what="HAProxy: every host UP by its probe check")
    controller = os.path.join(server_root, "controller")
    r2_src, r3_src = release_archive(controller, "r2"), release_archive(controller, "r3")
    inventory = write_inventory(server_root, hosts)

    # --- r2 over the three hosts, under load -------------------------------------------
    rc, output, watch, records, seconds = rollout_under_load(
        hosts, haproxy, inventory, server_root, "r2", r2_src, "r1")
    assert rc == 0, brief(output)
    figures = check_load(hosts, watch, records)
    slow_across = figures["slow_across_a_flip"]
    early, late = assets_by_fallback(watch, records, "r2", "r1")
    print(f"\nr2 rollout: playbook {seconds:.1f}s, {figures}, r2's asset from r1 hosts {early}, "
          f"r1's asset from r2 hosts {late}")
    for h in hosts:
        assert [(f[2], f[3]) for f in watch.flips[h.name]] == [("r1", "r2")], watch.flips
        doc = h.status()
        assert doc["release"] == h.release_dir("r2") and all_ready(h.httpd), doc
        assert figures["pages_by_host"][h.name].get("r1") and figures["pages_by_host"][h.name].get("r2")
    # One host at a time (fpm_replica_batch 1): each flipped after the one before.
    flips = [watch.flips[h.name][0] for h in hosts]
    assert flips[0][1] < flips[1][0] and flips[1][1] < flips[2][0], flips
    # Both directions of asset continuity happened (and none was missed).
    assert early >= 1 and late >= 1, (early, late)
    assert recap(output) and all(v["failed"] == 0 for v in recap(output).values()), brief(output)

    # --- r3, which host 2 cannot run: the rollout stops there ----------------------------
    # Two hosts at a time: host 1 passes beside host 2, and the play stops
    # after their batch (max_fail_percentage 0), before host 3's.
    rc, output, watch, records, seconds = rollout_under_load(
        hosts, haproxy, inventory, server_root, "r3", r3_src, "r2", "-e", "fpm_replica_batch=2")
    assert rc == 2, brief(output)
    assert "h2: r3 failed at 'Gate: the check URLs answer 200'; rolled back to r2;" in output, \
        brief(output)
    figures = check_load(hosts, watch, records)
    early, _late = assets_by_fallback(watch, records, "r3", "r2")
    print(f"r3 rollout (h2 fails): playbook {seconds:.1f}s, {figures}, r3's asset from r2 hosts {early}")
    assert early >= 1
    # Seconds-long requests were in flight on a host as it flipped, and
    # finished on the release they started on.
    assert slow_across + figures["slow_across_a_flip"] >= 1
    assert [(f[2], f[3]) for f in watch.flips["h1"]] == [("r2", "r3")], watch.flips
    assert [(f[2], f[3]) for f in watch.flips["h2"]] == [("r2", "r3"), ("r3", "r2")], watch.flips
    assert watch.flips["h3"] == [], watch.flips
    assert h1.status()["release"] == h1.release_dir("r3")
    doc = h2.status()
    assert doc["release"] == h2.release_dir("r2") and doc["previous_release"] == h2.release_dir("r3"), doc
    # Host 3 received r3 (before any flip) and was left alone: its record of
    # the last deploy is still r2's.
    assert os.path.isdir(h3.release_dir("r3")) and h3.on() == "r2"
    assert os.path.basename(os.readlink(h3.current + ".previous")) == "r1"
    assert h3.status()["previous_release"] == h3.release_dir("r1")
    summary = recap(output)
    assert summary["h2"]["failed"] == 1 and summary["h1"]["failed"] == summary["h3"]["failed"] == 0, summary

    # --- host 2 fixed, the same rollout again: host 1 is a no-op --------------------------
    write_shared_config(h2.app, queue=True)
    watch = Watch(hosts)
    started = time.monotonic()
    proc, log = playbook(server_root, inventory, "r3", r3_src, "-e", "fpm_replica_watch=1s")
    rc, output = wait_playbook(proc, log, watch)
    seconds = time.monotonic() - started
    assert rc == 0, brief(output)
    summary = recap(output)
    print(f"r3 again: playbook {seconds:.1f}s, recap {summary}")
    assert summary["h1"]["changed"] == 0 and summary["h2"]["changed"] >= 1 and summary["h3"]["changed"] >= 1, \
        summary
    assert watch.flips["h1"] == [] and [(f[2], f[3]) for f in watch.flips["h3"]] == [("r2", "r3")]
    for h in (h2, h3):  # the CLI's --watch 1s ran there, and said so
        assert re.search(rf"watched {re.escape(h.release_dir('r3'))} for 1s: ", output), brief(output)
    for h in hosts:
        assert h.status()["release"] == h.release_dir("r3")

    # --- a host down while the release is copied: no host flips ------------------------
    # (Host 3 reached over ssh at a loopback port nothing listens on.)
    down = write_inventory(server_root, hosts, "inventory-h3-down.yml", h3={
        "ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": harness.free_port()})
    watch = Watch(hosts)
    proc, log = playbook(server_root, down, "r4", release_archive(controller, "r4"))
    rc, output = wait_playbook(proc, log, watch)
    assert rc != 0 and "fatal: [h3]: UNREACHABLE!" in output, brief(output)
    assert all(flips == [] for flips in watch.flips.values()), watch.flips
    assert not any(os.path.exists(h.release_dir("r4")) for h in hosts)
    assert all(h.on() == "r3" for h in hosts)

    # No deploy, and not the failed one, ever took a host out of rotation.
    servers = haproxy.servers()
    assert all(servers[f"web{i}"]["status"] == "UP" and servers[f"web{i}"]["chkdown"] == "0"
               for i in (1, 2, 3)), servers

    # --- HAProxy's check is the probe lane: a host with no usable replica leaves --------
    nonce = h3.status()["nonce"]
    for name in ("a", "b"):
        assert h3.httpd.control("drain", name, nonce).status == 200
    drained = time.monotonic()
    assert h3.httpd.get("/healthz.php").status == 503
    harness.wait_for(lambda: (haproxy.servers() or {}).get("web3", {}).get("status") == "DOWN", 10,
                     what="HAProxy to take host 3 out")
    # inter 2s, then fall 2 at fastinter 500ms: out within 2.5 s, and a
    # little for the checks' own time.
    out_after = time.monotonic() - drained
    print(f"host 3 out of HAProxy {out_after:.1f}s after its replicas were drained")
    assert out_after < 3.5
    print(f"wall time {time.monotonic() - t0:.1f}s")
