"""Integration harness, in the manner of httpd's pyhttpd: every test gets its own
generated server root (event MPM, a free loopback port, its own pid file and
error log), real php-fpm masters started from one shared config file through
FPM_REPLICA_* environment variables, and real HTTP on 127.0.0.1.

Every process a test starts is recorded by PID and stopped by PID when the
test ends, pass or fail. After each test the error log is the oracle: any
[warn] or [error] line the test did not declare as expected fails it.
"""

import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

SOURCE_DIR = os.environ.get(
    "FPMR_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD_DIR = os.environ.get("FPMR_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
PHP_DIR = os.path.join(SOURCE_DIR, "tests", "php")
FPM_CONF_TEMPLATE = os.path.join(SOURCE_DIR, "tests", "integration", "fpm-replica.conf")
FPM_SUPERVISED_CONF = os.path.join(SOURCE_DIR, "tests", "integration", "fpm-supervised.conf")

HTTPD_BIN = shutil.which("apache2", path="/usr/sbin:/usr/local/sbin") or shutil.which("httpd")
APXS = shutil.which("apxs") or shutil.which("apxs2")
LOADGEN = os.path.join(BUILD_DIR, "fpmr-loadgen")
HELPER = os.path.join(BUILD_DIR, "fpm-replica-helper")
CLI = os.path.join(BUILD_DIR, "fpm-replica")  # the operator's tool (cli/)
MODULE = os.path.join(BUILD_DIR, "mod_fpm_replica.so")
RUN_USER = "www-data"

# What httpd and the module log when a replica refuses or drops connections:
# mod_proxy's connect failures and its "worker in error" lines, and our own
# hold-off line. Tests that kill or stop a replica expect these.
REPLICA_DOWN_LOG = (r"AH01079", r"AH00957", r"AH02454", r"AH00959", r"AH00940",
                    r"FPMR00016", r"FPMR00012")
# A replica killed while requests were in flight on it also produces these.
REPLICA_KILLED_LOG = REPLICA_DOWN_LOG + (r"AH01073", r"AH01074", r"AH01075", r"AH01067",
                                         r"AH10143")


def apxs_query(name):
    return subprocess.run([APXS, "-q", name], check=True, capture_output=True,
                          text=True).stdout.strip()


def php_fpm_binary():
    found = sorted(glob.glob("/usr/sbin/php-fpm*"))
    if not found:
        raise RuntimeError("php-fpm is not installed")
    return found[-1]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def proc_stats():
    """(pid, fields of /proc/PID/stat after the command name) of every
    process still there: fields[0] is the state, [1] the parent pid."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                yield int(entry), f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue


def children_of(parent_pid):
    """Pids of the live (not zombie) processes whose parent is `parent_pid`."""
    return sorted(pid for pid, fields in proc_stats()
                  if int(fields[1]) == parent_pid and fields[0] != "Z")


def socket_fds(pid):
    """{socket inode: descriptor number} of process `pid`'s open sockets."""
    out = {}
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            out[int(link[8:-1])] = int(fd)
    return out


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def unix_socket_accepts(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(path)
            return True
        except OSError:
            return False


class Response:
    def __init__(self, status, body, headers):
        self.status = status
        self.body = body
        self.headers = headers

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.text)


class PhpFpm:
    """One php-fpm master ("replica"), started from the shared config file."""

    def __init__(self, root, name, listen, status_listen="", workers=4, extra_env=None,
                 wrapper=None, conf=None):
        self.conf = conf or FPM_CONF_TEMPLATE
        self.wrapper = wrapper or []   # e.g. fpm-replica-helper spawn ... --
        self.root = root
        self.name = name
        self.listen = listen
        self.status_listen = status_listen
        self.workers = workers
        self.extra_env = extra_env or {}
        self.proc = None
        self.log = os.path.join(root, "logs", f"php-fpm-{name}.log")

    def start(self, timeout=10):
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "FPM_REPLICA_NAME": self.name,
            "FPM_REPLICA_LISTEN": self.listen,
            "FPM_REPLICA_STATUS_LISTEN": self.status_listen or f"{self.listen}.status",
            "FPM_REPLICA_PROBE_LISTEN": "",
            "FPM_REPLICA_RELEASE": "",
            "FPM_REPLICA_RUN_DIR": os.path.join(self.root, "run"),
            "FPM_REPLICA_LOG": self.log,
            "FPM_REPLICA_USER": RUN_USER,
            "FPM_REPLICA_WORKERS": str(self.workers),
        }
        env.update(self.extra_env)
        # Own session, so a test can SIGKILL the whole process group.
        self.proc = subprocess.Popen(
            self.wrapper + [php_fpm_binary(), "--nodaemonize", "--fpm-config", self.conf],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.log + ".stderr", "w"), start_new_session=True)
        wait_for(lambda: unix_socket_accepts(self.listen) or self._died(), timeout,
                 what=f"php-fpm {self.name} to listen on {self.listen}")
        if self._died():
            raise RuntimeError(f"php-fpm {self.name} exited: {self.read_log()}")
        return self

    def _died(self):
        return self.proc.poll() is not None

    @property
    def pid(self):
        return self.proc.pid

    def kill_group(self, sig=signal.SIGKILL):
        """Signal the master and every worker (the whole process group)."""
        os.killpg(self.proc.pid, sig)

    def stop(self, timeout=10):
        if not self.proc or self.proc.poll() is not None:
            return
        try:
            self.proc.send_signal(signal.SIGTERM)  # php-fpm: fast shutdown
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)
        # Workers of a killed master are reparented; make sure none is left.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def read_log(self):
        out = ""
        for path in (self.log, self.log + ".stderr"):
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    out += f.read()
        return out


BASE_MODULES = [
    ("mpm_event_module", "mod_mpm_event.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("authz_host_module", "mod_authz_host.so"),
    ("mime_module", "mod_mime.so"),
    ("dir_module", "mod_dir.so"),
    ("alias_module", "mod_alias.so"),
    ("rewrite_module", "mod_rewrite.so"),
    ("setenvif_module", "mod_setenvif.so"),
    ("proxy_module", "mod_proxy.so"),
    ("proxy_fcgi_module", "mod_proxy_fcgi.so"),
    ("proxy_balancer_module", "mod_proxy_balancer.so"),
    ("slotmem_shm_module", "mod_slotmem_shm.so"),
    ("lbmethod_bybusyness_module", "mod_lbmethod_bybusyness.so"),
]


class Httpd:
    """A real httpd with its own server root under a temporary directory."""

    def __init__(self, root):
        self.root = root
        self.port = free_port()
        self.modules_dir = apxs_query("LIBEXECDIR")
        self.expected_log = []   # regexes of [warn]/[error] lines a test expects
        self.fpms = []
        for sub in ("conf", "logs", "run", "htdocs"):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
        self.conf_path = os.path.join(root, "conf", "httpd.conf")
        self.error_log = os.path.join(root, "logs", "error_log")
        self.pid_file = os.path.join(root, "run", "httpd.pid")
        self.started = False
        self.main_pid = None
        self.replica_pids = set()  # masters seen in status documents (supervised ones)

    # --- configuration -------------------------------------------------
    def sock(self, name):
        return os.path.join(self.root, "run", f"{name}.sock")

    def write_config(self, vhost_body, modules=None, load_fpm_replica=True, extra_main="",
                     skip_modules=(), own_vhost=True, server_limit=4):
        """conf/httpd.conf with `vhost_body` (a string or a vhosts.VhostConfig)
        in the test's vhost, or as a complete <VirtualHost> of its own."""
        lines = [f'ServerRoot "{self.root}"',
                 f"PidFile {self.pid_file}",
                 f"ErrorLog {self.error_log}",
                 "LogLevel warn",
                 f"Listen 127.0.0.1:{self.port}",
                 f"User {RUN_USER}", f"Group {RUN_USER}",
                 "ServerName 127.0.0.1",
                 "Timeout 30",
                 "KeepAlive On",
                 "StartServers 2", f"ServerLimit {server_limit}", "ThreadsPerChild 32",
                 "MaxRequestWorkers 96", "MinSpareThreads 16", "MaxSpareThreads 96",
                 "ThreadLimit 32",
                 f"Mutex file:{self.root}/run default",
                 f"DefaultRuntimeDir {self.root}/run",
                 "TypesConfig /etc/mime.types",
                 "DirectoryIndex index.php index.html",
                 # As Debian's apache2.conf does: no .htaccess lookups unless
                 # a <Directory> asks for them.
                 "<Directory />", "    AllowOverride None", "    Require all denied",
                 "</Directory>"]
        for name, so in (modules or BASE_MODULES):
            if name in skip_modules:
                continue
            lines.append(f"LoadModule {name} {self.modules_dir}/{so}")
        if load_fpm_replica:
            lines.append(f"LoadModule fpm_replica_module {MODULE}")
        lines.append(extra_main)
        if own_vhost:
            lines.append(f"<VirtualHost 127.0.0.1:{self.port}>")
            lines.append("    ServerName app.test")
            lines.append(str(vhost_body))
            lines.append("</VirtualHost>")
        else:
            lines.append(str(vhost_body))  # a complete <VirtualHost> of its own
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def httpd_cmd(self, *args):
        return [HTTPD_BIN, "-d", self.root, "-f", self.conf_path, *args]

    def configtest(self):
        return subprocess.run(self.httpd_cmd("-t"), capture_output=True, text=True, timeout=30)

    # --- lifecycle -------------------------------------------------------
    def start(self, timeout=15):
        r = subprocess.run(self.httpd_cmd("-k", "start"), capture_output=True, text=True,
                           timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"httpd failed to start: {r.stdout}{r.stderr}{self.read_log()}")
        self.started = True
        wait_for(self._answers, timeout, what="httpd to answer")
        self.main_pid = wait_for(self.pid, timeout, what="httpd's pid file")
        return self

    def _answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def pid(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def graceful(self, timeout=15):
        old_gen = self.read_log().count("resuming normal operations")
        subprocess.run(self.httpd_cmd("-k", "graceful"), check=True, timeout=30,
                       capture_output=True)
        wait_for(lambda: self.read_log().count("resuming normal operations") > old_gen,
                 timeout, what="graceful restart")

    def stop(self, timeout=15):
        pid = self.pid()
        if self.started:
            subprocess.run(self.httpd_cmd("-k", "stop"), timeout=30, capture_output=True)
        if pid:
            try:
                wait_for(lambda: not pid_alive(pid), timeout, what="httpd to stop")
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
        self.started = False

    def start_fpm(self, name, **kw):
        fpm = PhpFpm(self.root, name, self.sock(name), **kw)
        self.fpms.append(fpm)
        return fpm.start()

    def cleanup(self):
        self.stop()
        for fpm in self.fpms:
            fpm.stop()
        # Supervised masters must be gone with httpd; whatever a failed test
        # left behind is killed here, by the pids the status handler reported.
        for pid in self.replica_pids:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    is_fpm = b"php-fpm" in f.read()
                if is_fpm and pid_alive(pid):
                    os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass

    # --- HTTP ---------------------------------------------------------------
    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path, headers=None, timeout=10):
        return self.request("GET", path, headers=headers, timeout=timeout)

    def post(self, path, data, headers=None, timeout=10):
        body = urllib.parse.urlencode(data).encode()
        hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
        hdrs.update(headers or {})
        return self.request("POST", path, body=body, headers=hdrs, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=10):
        req = urllib.request.Request(self.url(path), data=body, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return Response(resp.status, resp.read(), dict(resp.headers))
        except urllib.error.HTTPError as e:
            return Response(e.code, e.read(), dict(e.headers))

    def status(self, path="/fpm-replica-status", headers=None):
        r = self.get(path, headers=headers)
        assert r.status == 200, r.text
        doc = r.json()
        self.replica_pids.update(rep["pid"] for rep in doc["replicas"] if rep["pid"])
        return doc

    def replica(self, name, path="/fpm-replica-status"):
        for rep in self.status(path)["replicas"]:
            if rep["name"] == name:
                return rep
        raise KeyError(name)

    def control(self, action, replica, nonce=None, path="/fpm-replica-status"):
        if nonce is None:
            nonce = self.status(path)["nonce"]
        return self.post(path, {"action": action, "replica": replica},
                         headers={"X-Fpm-Replica-Nonce": nonce})

    # --- load -----------------------------------------------------------------
    def load(self, paths, duration, out=None, timeout=30, max_requests=0):
        """Runs fpmr-loadgen in the background; returns a LoadRun."""
        out = out or os.path.join(self.root, "logs", f"load-{time.monotonic_ns()}.tsv")
        return start_load(self.port, paths, duration, out, timeout, max_requests)

    # --- error log oracle -----------------------------------------------------------
    def read_log(self):
        try:
            with open(self.error_log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def expect_log(self, *patterns):
        self.expected_log.extend(patterns)

    def unexpected_log_lines(self):
        return unexpected_log_lines(self.read_log(), self.expected_log)


def unexpected_log_lines(log_text, expected_patterns):
    """The [warn]-or-worse lines of an httpd error log no pattern accounts for."""
    bad = []
    for line in log_text.splitlines():
        if not re.search(r"\[[\w]*:?(warn|error|crit|alert|emerg)\]", line):
            continue
        if any(re.search(p, line) for p in expected_patterns):
            continue
        bad.append(line)
    return bad


def start_load(port, paths, duration, out, timeout=30, max_requests=0, pause_ms=0):
    """fpmr-loadgen against 127.0.0.1:port in the background: paths is a list
    of (path, clients); every response is recorded in out; each client waits
    pause_ms after every response. Returns a LoadRun."""
    cmd = [LOADGEN, "--port", str(port), "--duration", str(duration),
           "--out", out, "--timeout", str(timeout)]
    if max_requests:
        cmd += ["--max-requests", str(max_requests)]
    if pause_ms:
        cmd += ["--pause", str(pause_ms)]
    for path, clients in paths:
        cmd += ["--path", f"{path}:{clients}"]
    return LoadRun(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True), out, duration + timeout + 30)


class LoadRun:
    def __init__(self, proc, out, limit):
        self.proc = proc
        self.out = out
        self.limit = limit
        self.started_at = time.time()

    def wait(self):
        try:
            stdout, stderr = self.proc.communicate(timeout=self.limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        if self.proc.returncode != 0:
            raise RuntimeError(f"loadgen failed: {stdout}{stderr}")
        return LoadResult(self.out)

    def stop(self):
        """Ends the load early; wait() then returns what was recorded."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class LoadResult:
    def __init__(self, path):
        self.records = []
        with open(path, errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t", 5)
                if len(parts) < 6:
                    continue
                self.records.append({
                    "start": int(parts[0]) / 1e6, "end": int(parts[1]) / 1e6,
                    "status": int(parts[2]), "path": parts[3], "error": parts[4],
                    "body": parts[5]})

    @staticmethod
    def is_failure(rec):
        return rec["status"] == 0 or rec["status"] >= 500

    def failures(self):
        return [r for r in self.records if self.is_failure(r)]

    def summary(self):
        by_status = {}
        for r in self.records:
            by_status[r["status"]] = by_status.get(r["status"], 0) + 1
        return f"{len(self.records)} requests, by status {by_status}"
