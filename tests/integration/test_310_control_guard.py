"""The control endpoint under attack: every request below carries the right
nonce (read from the status document, as an attacker who can read it would)
except where the nonce itself is attacked, and must change nothing."""

import os
import subprocess

import harness
from vhosts import steering_vhost

CLI = harness.CLI

# A directory the application (or its uploads) controls, where .htaccess
# files are read, as the samples allow for front controllers.
HTACCESS_DIRS = """
ServerAlias www.app.test *.cdn.app.test
<Directory {root}/htdocs/uploads>
    AllowOverride FileInfo
</Directory>
"""


def start(httpd):
    httpd.write_config(steering_vhost(httpd, extra=HTACCESS_DIRS.format(root=httpd.root)))
    httpd.start_fpm("a")
    httpd.start_fpm("b")
    httpd.start()


def drain(httpd, headers, nonce=None, path="/fpm-replica-status"):
    nonce = nonce if nonce is not None else httpd.status()["nonce"]
    return httpd.post(path, {"action": "drain", "replica": "a"},
                      headers={"X-Fpm-Replica-Nonce": nonce, **headers})


def assert_untouched(httpd):
    assert [r["state"] for r in httpd.status()["replicas"]] == ["ready", "ready"]


def test_cross_origin_post_with_the_right_nonce_is_refused(httpd):
    start(httpd)
    httpd.expect_log(r"FPMR00141")
    own = f"http://127.0.0.1:{httpd.port}"
    for headers in ({"Origin": "http://evil.test"},
                    {"Origin": "null"},                            # sandboxed frame, data: page
                    {"Origin": f"https://127.0.0.1:{httpd.port}"},  # same host, other scheme
                    {"Origin": f"http://127.0.0.1:{httpd.port + 1}"},
                    {"Origin": "http://evil.test", "Referer": own + "/fpm-replica-status"},
                    {"Referer": "http://evil.test/attack.html"},
                    {"Origin": "not an origin"}):
        r = drain(httpd, headers)
        assert r.status == 403, (headers, r.status, r.text)
        assert "cross-origin" in r.json()["error"]
    assert_untouched(httpd)
    assert httpd.read_log().count("FPMR00141") == 7


def test_same_origin_post_and_no_origin_at_all_are_served(httpd):
    """The HTML page's buttons (Origin of the page itself) and the CLI (no
    Origin, no Referer) keep working; default ports are compared as equal."""
    start(httpd)
    own = f"http://127.0.0.1:{httpd.port}"
    assert drain(httpd, {"Origin": own}).status == 200
    assert httpd.replica("a")["state"] == "draining"
    nonce = httpd.status()["nonce"]
    r = httpd.post("/fpm-replica-status", {"action": "undrain", "replica": "a"},
                   headers={"X-Fpm-Replica-Nonce": nonce,
                            "Referer": own + "/fpm-replica-status?format=html"})
    assert r.status == 200
    assert httpd.replica("a")["state"] == "ready"
    # Host without its port and Origin with the default one: the same origin.
    r = drain(httpd, {"Host": "app.test", "Origin": "http://app.test:80"})
    assert r.status == 200, r.text
    assert httpd.control("undrain", "a").status == 200


def test_dns_rebinding_host_is_refused(httpd):
    """evil.test's DNS now answers 127.0.0.1: the browser, on evil.test's page,
    reads the document and posts with the nonce, same-origin as it sees it."""
    start(httpd)
    httpd.expect_log(r"FPMR00140")
    for host in ("evil.test", "app.test.evil.test", "127.0.0.2", "evilapp.test"):
        hdr = {"Host": f"{host}:{httpd.port}"}
        nonce = httpd.status(headers=hdr)["nonce"]  # GET still answers
        r = drain(httpd, {**hdr, "Origin": f"http://{host}:{httpd.port}"}, nonce=nonce)
        assert r.status == 403, (host, r.text)
        r = drain(httpd, hdr, nonce=nonce)  # and without Origin
        assert r.status == 403, (host, r.text)
        assert "not a name" in r.json()["error"]
    assert_untouched(httpd)
    assert httpd.read_log().count("FPMR00140") == 8


def test_every_name_of_the_vhost_is_served(httpd):
    start(httpd)
    for host in ("app.test", "APP.TEST.", "www.app.test", "x.cdn.app.test", "localhost",
                 f"127.0.0.1:{httpd.port}"):
        r = drain(httpd, {"Host": host})
        assert r.status == 200, (host, r.text)
        assert httpd.control("undrain", "a").status == 200


def test_wrong_nonce_of_the_right_length_is_refused(httpd):
    start(httpd)
    httpd.expect_log(r"FPMR00018")
    nonce = httpd.status()["nonce"]
    for wrong in (nonce[:-1] + ("0" if nonce[-1] != "0" else "1"),
                  ("0" if nonce[0] != "0" else "1") + nonce[1:],
                  nonce[:-1], nonce + "0", ""):
        assert len(wrong) != len(nonce) or wrong != nonce
        r = drain(httpd, {}, nonce=wrong)
        assert r.status == 403, (wrong, r.text)
    assert_untouched(httpd)


def test_cli_still_drains_and_undrains(httpd):
    start(httpd)

    def cli(*args):
        return subprocess.run([CLI, "--url", httpd.url("/fpm-replica-status"),
                               "--timeout", "30", *args],
                              capture_output=True, text=True, timeout=60)
    r = cli("drain", "a")
    assert r.returncode == 0, r.stdout + r.stderr
    assert httpd.replica("a")["state"] == "draining"
    r = cli("--host", "app.test", "undrain", "a")
    assert r.returncode == 0, r.stdout + r.stderr
    assert httpd.replica("a")["state"] == "ready"


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(os.path.dirname(path), 0o755)
    os.chmod(path, 0o644)


def test_status_handler_set_by_htaccess_is_refused(httpd):
    """An application (or an upload) that writes .htaccess where FileInfo is
    allowed must not get the document (nonce, pids, paths) nor drive it."""
    uploads = os.path.join(httpd.root, "htdocs", "uploads")
    write(os.path.join(uploads, "status", ".htaccess"), "SetHandler fpm-replica-status\n")
    write(os.path.join(uploads, "status", "x"), "x\n")
    write(os.path.join(uploads, "media", ".htaccess"), "AddHandler fpm-replica-status .jpg\n")
    write(os.path.join(uploads, "media", "cat.jpg"), "not a cat\n")
    write(os.path.join(uploads, "rewrite", ".htaccess"),
          "RewriteEngine On\nRewriteRule ^ - [H=fpm-replica-status]\n")
    write(os.path.join(uploads, "rewrite", "y"), "y\n")
    start(httpd)
    httpd.expect_log(r"FPMR00142")
    nonce = httpd.status()["nonce"]
    paths = ("/uploads/status/x", "/uploads/media/cat.jpg", "/uploads/rewrite/y")
    for path in paths:
        r = httpd.get(path)
        assert r.status == 403 and "nonce" not in r.text, (path, r.status, r.text)
        r = drain(httpd, {}, nonce=nonce, path=path)
        assert r.status == 403, (path, r.status, r.text)
        assert "fpm-replica-status answers only where" in r.text
    assert_untouched(httpd)
    assert httpd.read_log().count("FPMR00142") == 2 * len(paths)
    # The real location still answers and obeys.
    assert httpd.control("drain", "a").status == 200


def test_sample_status_location_refuses_what_a_front_proxy_forwards(httpd):
    """The shipped realpath sample: a proxy on this host (connecting from
    127.0.0.1) forwarding an Internet client must not reach the status
    handler; the operator on loopback does."""
    from releases import flip, make_release
    from test_800_supervision import all_ready
    from test_980_samples import install_samples
    app = os.path.join(httpd.root, "app")
    make_release(app, "r1")
    flip(app, "releases/r1")
    httpd.write_config(install_samples(httpd, app, "fpm-replica-realpath.conf"), own_vhost=False)
    httpd.start()
    harness.wait_for(lambda: all_ready(httpd), 20, what="sample replicas ready")
    httpd.expect_log(r"AH01630")  # mod_authz_core: client denied by server configuration
    for forwarded in ({"X-Forwarded-For": "203.0.113.7"}, {"Forwarded": "for=203.0.113.7"}):
        r = httpd.get("/fpm-replica-status", headers=forwarded)
        assert r.status == 403, (forwarded, r.status, r.text[:200])
        r = drain(httpd, forwarded)
        assert r.status == 403, (forwarded, r.status)
    assert drain(httpd, {}).status == 200
    assert httpd.replica("a")["state"] == "draining"
