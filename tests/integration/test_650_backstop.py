"""The php-fpm backstop: whatever Apache hands php-fpm, no file but a .php
script runs and no file outside the release is served. The replicas run the
shipped conf/php-fpm-replica.conf (security.limit_extensions = .php).

An upload, evil.jpg, holds PHP code whose output (MARKER) appears only when
it runs: its own text never contains MARKER, so serving it as a static
image is fine, executing it is not. Each request is tried against the
vhost as the samples configure it (<FilesMatch "\\.php$">) and against a
careless but common mapping (<LocationMatch "\\.php"> with path info), where
Apache itself would hand evil.jpg to php-fpm and only php-fpm can refuse.

Measured with the shipped line removed (php-fpm's default, ".php .phar"):
the two evil.phar requests run the upload. With the limit switched off
(`security.limit_extensions =`): every .htaccess case, the careless
mapping's path-info case and .phar run it (11 requests). Stopped by Apache
before php-fpm either way, kept as defence in depth: NUL and encoded slash
(404), path info after an upload under <FilesMatch> (404), dot segments
(400 above the root, else folded into a path the front controller answers)."""

import os
import socket

import harness
from releases import flip, make_release
from vhosts import pinned_vhost

SHIPPED_FPM_CONF = os.path.join(harness.SOURCE_DIR, "conf", "php-fpm-replica.conf")
MARKER = "EVIL-CODE-RAN-42"
EVIL_PHP = '<?php echo "EVIL-CODE-" . "RAN-" . (6 * 7), "\\n";\n'
PASSWD_LINE = "root:x:0:0:"
OUTSIDE_TEXT = "OUTSIDE-THE-RELEASE"

CARELESS = """
<LocationMatch "^/careless/.*\\.php(/|$)">
    SetHandler fpm-replica
</LocationMatch>
"""

# Both mappings, each with the same attacks.
PREFIXES = ("", "/careless")
ATTACKS = (
    "/uploads/evil.jpg/x.php",             # path info after an upload
    "/uploads/evil.jpg%00.php",            # NUL truncation
    "/uploads/evil.jpg%2fx.php",           # encoded slash
    "/uploads/handler/evil.jpg",           # .htaccess: SetHandler fpm-replica
    "/uploads/handler/evil.jpg/x.php",
    "/uploads/handler/notes.txt",
    "/uploads/handler/evil.phar",          # php-fpm's default list allows .phar
    "/uploads/added/evil.jpg",             # .htaccess: AddHandler fpm-replica .jpg
    "/index.php/../../etc/passwd",         # dot segments after a script
    "/index.php/%2e%2e/%2e%2e/etc/passwd",
    "/index.php/../../../outside.txt",
    "/uploads/handler/../../../outside.txt",
)


def shipped_fpm_conf(httpd):
    """The shipped file as it is (its masters log to httpd's error log)."""
    with open(SHIPPED_FPM_CONF) as f:
        text = f.read()
    assert "security.limit_extensions = .php\n" in text
    path = os.path.join(httpd.root, "conf", "app.conf")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)


def plant_uploads(public):
    for prefix in ("", "careless"):
        up = os.path.join(public, prefix, "uploads")
        write(os.path.join(up, "evil.jpg"), EVIL_PHP)
        write(os.path.join(up, "handler", ".htaccess"), "SetHandler fpm-replica\n")
        write(os.path.join(up, "handler", "evil.jpg"), EVIL_PHP)
        write(os.path.join(up, "handler", "notes.txt"), EVIL_PHP)
        write(os.path.join(up, "handler", "evil.phar"), EVIL_PHP)
        write(os.path.join(up, "added", ".htaccess"), "AddHandler fpm-replica .jpg\n")
        write(os.path.join(up, "added", "evil.jpg"), EVIL_PHP)
    write(os.path.join(public, "careless", "index.php"), "<?php echo 'careless index', \"\\n\";\n")
    for root, dirs, _ in os.walk(public):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)


def raw_get(port, path):
    """GET with the path exactly as written (no client-side normalising);
    HTTP/1.0, so the body comes unchunked."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: app.test\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode("utf-8", "replace")


def test_no_upload_runs_and_nothing_outside_the_release_is_served(httpd):
    app = os.path.join(httpd.root, "app")
    release = make_release(app, "r1")
    flip(app, "releases/r1")
    plant_uploads(os.path.join(release, "public"))
    write(os.path.join(app, "outside.txt"), OUTSIDE_TEXT + "\n")
    write(os.path.join(httpd.root, "outside.txt"), OUTSIDE_TEXT + "\n")
    httpd.write_config(pinned_vhost(httpd, app, extra=CARELESS))
    conf = shipped_fpm_conf(httpd)
    httpd.start_fpm("a", conf=conf)
    httpd.start_fpm("b", conf=conf)
    httpd.start()
    # php-fpm's refusal ("Access to the script ... has been denied (see
    # security.limit_extensions)") reaches the error log through mod_proxy_fcgi;
    # Apache's own refusals of malformed paths are logged too.
    httpd.expect_log(r"AH01071.*security\.limit_extensions", r"AH10244", r"AH00026")

    # The set-up works: PHP runs where it should, the upload is served as a file.
    assert harness.wait_for(lambda: "release=r1" in httpd.get("/version.php").text, 10,
                            what="PHP served")
    status, body = raw_get(httpd.port, "/careless/index.php")
    assert status == 200 and "careless index" in body, (status, body)
    status, body = raw_get(httpd.port, "/uploads/evil.jpg")
    assert status == 200 and "<?php" in body and MARKER not in body

    answers = {}
    for prefix in PREFIXES:
        for attack in ATTACKS:
            path = prefix + attack
            answers[path] = raw_get(httpd.port, path)
    leaks = {path: (status, body[:200]) for path, (status, body) in answers.items()
             if MARKER in body or PASSWD_LINE in body or OUTSIDE_TEXT in body}
    assert not leaks, "\n".join(f"{status} {path}: {body!r}"
                                 for path, (status, body) in sorted(leaks.items()))
    # Every attack was turned away or, where dot segments folded into a path
    # the release lacks, answered by the release's own front controller
    # (its .htaccess rewrites what does not exist to index.php).
    served = {path: (status, body[:80]) for path, (status, body) in answers.items()
              if status < 400 and not body.startswith("index release=r1 ")}
    assert not served, served
    print("\n".join(f"{status} {path}" for path, (status, _) in answers.items()))
