"""The warm-up script (share/warmup.php) against a real php-fpm, spoken to
over FastCGI straight on its socket as the supervisor does (never through
httpd): `list` answers what opcache has cached, `compile` caches scripts
without running them, and where opcache cannot be used both answer 409.
Also FpmReplicaWarmup at configtest."""

import os
import shutil
import socket
import struct

import pytest

import harness

WARMUP_SOURCE = os.path.join(harness.SOURCE_DIR, "share", "warmup.php")


# --- a tiny FastCGI client (what core/fcgi_ping.cc sends) ----------------

def _record(rtype, content=b""):
    padding = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBB", 1, rtype, 1, len(content), padding, 0) + content + b"\0" * padding


def _pair(name, value):
    def length(n):
        return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    name, value = name.encode(), value.encode()
    return length(len(name)) + length(len(value)) + name + value


def fastcgi(sock_path, script, query="", method="GET", body=b"",
            server_software="mod_fpm_replica", timeout=20):
    """One request; returns (status, headers dict, body bytes, stderr bytes)."""
    params = {
        "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": method,
        "SCRIPT_NAME": script, "SCRIPT_FILENAME": script,
        "REQUEST_URI": script + ("?" + query if query else ""), "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_SOFTWARE": server_software,
        "REMOTE_ADDR": "127.0.0.1",
    }
    if method == "POST":
        params["CONTENT_LENGTH"] = str(len(body))
        params["CONTENT_TYPE"] = "text/plain"
    encoded = b"".join(_pair(k, v) for k, v in params.items())
    out = _record(1, struct.pack(">HB5x", 1, 0))
    for at in range(0, len(encoded), 65528):
        out += _record(4, encoded[at:at + 65528])
    out += _record(4)
    for at in range(0, len(body), 65528):
        out += _record(5, body[at:at + 65528])
    out += _record(5)
    stdout, stderr = b"", b""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(out)
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError("php-fpm closed before END_REQUEST")
            buf += chunk
            ended = False
            while len(buf) >= 8:
                _, rtype, _, length, padding, _ = struct.unpack(">BBHHBB", buf[:8])
                if len(buf) < 8 + length + padding:
                    break
                content, buf = buf[8:8 + length], buf[8 + length + padding:]
                if rtype == 6:
                    stdout += content
                elif rtype == 7:
                    stderr += content
                elif rtype == 3:
                    ended = True
                    break
            if ended:
                break
    head, _, payload = stdout.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode(errors="replace").split("\r\n"):
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    status = int(headers.get("status", "200").split()[0])
    return status, headers, payload, stderr


# --- fixtures ---------------------------------------------------------------

class Site:
    """A php-fpm master (opcache on, as Debian ships it, unless told) with the warm-up script
    and a small application under the test's server root."""

    def __init__(self, httpd, admin_values=None, name="warm"):
        root = httpd.root
        self.share = os.path.join(root, "share")
        self.app = os.path.join(root, "app")
        self.marks = os.path.join(root, "marks")
        for d in (self.share, self.app, self.marks):
            os.makedirs(d, exist_ok=True)
        os.chmod(self.marks, 0o777)  # a script that ran could write here
        self.script = os.path.join(self.share, "warmup.php")
        shutil.copy(WARMUP_SOURCE, self.script)
        os.chmod(self.script, 0o644)
        conf = os.path.join(root, "conf", f"fpm-{name}.conf")
        with open(harness.FPM_CONF_TEMPLATE) as f:
            text = f.read()
        # The test writes its scripts just before they are compiled: opcache
        # would not cache files younger than file_update_protection (2 s).
        values = {"opcache.file_update_protection": "0"}
        values.update(admin_values or {})
        text += "".join(f"php_admin_value[{k}] = {v}\n" for k, v in values.items())
        with open(conf, "w") as f:
            f.write(text)
        self.fpm = httpd.start_fpm(name, conf=conf, workers=2)
        self.sock = httpd.sock(name)

    def write(self, name, text):
        path = os.path.join(self.app, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        return path

    def warmup(self, query, method="GET", body=b""):
        return fastcgi(self.sock, self.script, query, method, body)

    def list(self):
        status, headers, body, _ = self.warmup("action=list")
        assert status == 200, body
        assert headers["content-type"].startswith("text/plain")
        return body.decode().splitlines()

    def compile(self, paths, deadline_ms=5000):
        status, headers, body, _ = self.warmup(
            f"action=compile&deadline_ms={deadline_ms}", "POST",
            "".join(p + "\n" for p in paths).encode())
        assert status == 200, body
        assert headers["content-type"].startswith("text/plain")
        text = body.decode()
        assert text.count("\n") == 1 and text.startswith("compiled "), text
        words = text.split()
        return {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}

    def cached(self, paths):
        """opcache_is_script_cached for each path, from a script of its own."""
        check = self.write("check.php",
                           "<?php header('Content-Type: text/plain');\n"
                           "foreach (explode(\"\\n\", trim(file_get_contents('php://input'))) as $p)\n"
                           "  echo opcache_is_script_cached($p) ? \"1\\n\" : \"0\\n\";\n")
        status, _, body, _ = fastcgi(self.sock, check, method="POST",
                                     body="\n".join(paths).encode())
        assert status == 200, body
        return dict(zip(paths, (line == "1" for line in body.decode().splitlines())))


def side_effect_script(marks, name):
    return f"<?php file_put_contents('{marks}/{name}', 'ran'); echo 'ran';\n"


# --- the script ---------------------------------------------------------------

def test_list_answers_the_scripts_requested(httpd):
    site = Site(httpd)
    a = site.write("a.php", "<?php echo 'a';\n")
    b = site.write("lib/b.php", "<?php echo 'b';\n")
    c = site.write("c.php", "<?php echo 'c';\n")  # never requested
    for path in (a, b):
        status, _, body, _ = fastcgi(site.sock, path)
        assert status == 200 and body in (b"a", b"b")
    listed = site.list()
    assert a in listed and b in listed
    assert c not in listed
    assert site.script not in listed  # the warm-up script is no part of the working set
    assert all(line.startswith("/") for line in listed)


def test_compile_caches_scripts_without_running_them(httpd):
    site = Site(httpd)
    plain = site.write("plain.php", "<?php function plain_helper() { return 1; }\n")
    side = site.write("side.php", side_effect_script(site.marks, "side"))
    control = site.write("control.php", side_effect_script(site.marks, "control"))
    broken = site.write("broken.php", "<?php this is not php;\n")
    text = site.write("notes.txt", "<?php echo 'not a .php file';\n")
    os.makedirs(os.path.join(site.app, "dir.php"), exist_ok=True)
    missing = os.path.join(site.app, "missing.php")
    result = site.compile([plain, side, missing, text, os.path.join(site.app, "dir.php"),
                           "relative.php", broken, site.app + "/../app/plain.php", ""])
    assert result["compiled"] == 2, result
    assert result["errors"] == 1, result      # broken.php
    assert result["skipped"] == 5, result     # missing, .txt, directory, relative, '..'
    assert result["timed_out"] == 0
    assert result["elapsed_ms"] >= 0
    cached = site.cached([plain, side, broken, control])
    assert cached[plain] and cached[side]
    assert not cached[broken] and not cached[control]
    # Compiled, not run: side.php wrote nothing, though a script that runs can.
    assert not os.path.exists(os.path.join(site.marks, "side"))
    status, _, body, _ = fastcgi(site.sock, control)
    assert status == 200 and body == b"ran"
    assert os.path.exists(os.path.join(site.marks, "control"))
    # Compiled scripts are in the next list: the working set a successor gets.
    assert plain in site.list() and side in site.list()


def test_compile_stops_at_its_deadline(httpd):
    site = Site(httpd)
    paths = [site.write(f"many/s{i}.php", f"<?php function f{i}() {{ return {i}; }}\n")
             for i in range(2000)]
    result = site.compile(paths, deadline_ms=1)
    assert result["timed_out"] == 1, result
    assert result["compiled"] + result["skipped"] + result["errors"] == 2000
    assert result["skipped"] > 0


def test_no_warning_reaches_the_answer(httpd):
    site = Site(httpd)
    outside = os.path.join(httpd.root, "outside")
    os.makedirs(outside, exist_ok=True)
    elsewhere = os.path.join(outside, "x.php")
    with open(elsewhere, "w") as f:
        f.write("<?php echo 1;\n")
    os.chmod(elsewhere, 0o644)
    # Only the warm-up script's and the application's directories.
    httpd.fpms.remove(site.fpm)
    site.fpm.stop()
    site = Site(httpd, {"open_basedir": f"{site.share}/:{site.app}/"}, name="based")
    inside = site.write("in.php", "<?php echo 1;\n")
    link = os.path.join(site.app, "link.php")
    os.symlink(elsewhere, link)  # inside by its name, outside where it leads
    result = site.compile([inside, elsewhere, link, "/etc/passwd.php"])
    assert result["compiled"] == 1, result
    assert result["skipped"] == 3, result
    assert result["errors"] == 0 and result["warnings"] == 0, result


@pytest.mark.parametrize("admin, reason", [
    ({"opcache.enable": "0"}, "opcache is off"),
    ({"opcache.restrict_api": "/nowhere/"}, "restricted to scripts under /nowhere/"),
])
def test_unusable_opcache_answers_409_with_one_line(httpd, admin, reason):
    site = Site(httpd, admin)
    for query, method in (("action=list", "GET"), ("action=compile&deadline_ms=100", "POST")):
        status, headers, body, _ = site.warmup(query, method, b"/x.php\n" if method == "POST" else b"")
        assert status == 409, body
        assert headers["content-type"].startswith("text/plain")
        text = body.decode()
        assert text.count("\n") == 1 and reason in text, text


def test_requests_the_script_refuses(httpd):
    site = Site(httpd)
    # Through httpd, SERVER_SOFTWARE is httpd's own: nothing is told.
    status, _, body, _ = fastcgi(site.sock, site.script, "action=list", server_software="Apache")
    assert status == 403 and b"/" not in body.replace(b"fpm-replica", b"")
    assert site.warmup("action=list", "POST")[0] == 405
    assert site.warmup("action=compile&deadline_ms=10")[0] == 405
    assert site.warmup("action=drop")[0] == 400
    assert site.warmup("action=compile&deadline_ms=0", "POST", b"/x.php\n")[0] == 400
    assert site.warmup("action=compile", "POST", b"/x.php\n")[0] == 400


# --- FpmReplicaWarmup at configtest --------------------------------------------

def _configtest(httpd, lines):
    httpd.write_config(f"DocumentRoot {httpd.root}/htdocs\n"
                       f"FpmReplica a unix:{httpd.sock('a')}\n" + lines)
    return httpd.configtest()


@pytest.mark.parametrize("line", [
    "FpmReplicaWarmup",
    "FpmReplicaWarmup off",
    "FpmReplicaWarmup timeout=3s",
    "FpmReplicaWarmup script=/opt/app/warmup.php timeout=500ms",
    "FpmReplicaWarmup / /index.php?warm=1 timeout=5s",
])
def test_warmup_directive_passes_configtest(httpd, line):
    r = _configtest(httpd, line)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("lines, message", [
    ("FpmReplicaWarmup timeout=10ms",
     "FpmReplicaWarmup: timeout=10ms must be between 100ms and 10m"),
    ("FpmReplicaWarmup off /",
     "FpmReplicaWarmup: 'off' must be the only argument"),
    ("FpmReplicaWarmup script=warmup.php",
     "FpmReplicaWarmup: script=warmup.php must be the absolute path of a .php file, "
     "without '.' or '..' components"),
    ("FpmReplicaWarmup index.php",
     "FpmReplicaWarmup: unknown argument 'index.php' (timeout=, script=, URL paths "
     "starting with '/', or off)"),
    ("FpmReplicaWarmup /a#frag",
     "FpmReplicaWarmup: '/a#frag' must be a URL path such as /index.php"),
    ("FpmReplicaWarmup\nFpmReplicaWarmup off",
     "FpmReplicaWarmup: given twice in this virtual host"),
])
def test_bad_warmup_directive_is_refused(httpd, lines, message):
    r = _configtest(httpd, lines)
    assert r.returncode != 0
    refusals = [l for l in r.stderr.splitlines() if l.startswith("FpmReplicaWarmup")]
    assert refusals == [message], r.stderr


def test_a_file_younger_than_file_update_protection_is_compiled_not_kept(httpd):
    # opcache's default: a file changed in the last 2 s is not cached (it
    # may still be being written). A deploy's new files are such files.
    site = Site(httpd, {"opcache.file_update_protection": "2"})
    fresh = site.write("fresh.php", "<?php echo 1;\n")
    result = site.compile([fresh])
    assert result["uncached"] == 1 and result["compiled"] == 0, result
    assert not site.cached([fresh])[fresh]
