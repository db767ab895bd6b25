"""The sample configurations in conf/ run as shipped, with only their paths
and port moved into the test's server root."""

import os
import re

import pytest

import harness
from releases import flip, make_release
from test_800_supervision import all_ready

CONF_DIR = os.path.join(harness.SOURCE_DIR, "conf")


def relocate(text, httpd, app):
    root = httpd.root
    for old, new in (("/srv/app", app),
                     ("/srv/live/app", f"{root}/live/app"),
                     ("/run/fpm-replica", f"{root}/run"),
                     ("/etc/fpm-replica", f"{root}/conf"),
                     ("/usr/sbin/php-fpm8.2", harness.php_fpm_binary()),
                     ("/usr/libexec/fpm-replica-helper", harness.HELPER),
                     ("<VirtualHost *:80>", f"<VirtualHost 127.0.0.1:{httpd.port}>")):
        text = text.replace(old, new)
    return text


def install_samples(httpd, app, vhost_file):
    for name, target in (("php-fpm-replica.conf", "app.conf"), ("helper.conf", "helper.conf")):
        with open(os.path.join(CONF_DIR, name)) as f:
            text = relocate(f.read(), httpd, app)
        path = os.path.join(httpd.root, "conf", target)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
    with open(os.path.join(CONF_DIR, vhost_file)) as f:
        return relocate(f.read(), httpd, app)


@pytest.mark.parametrize("sample", ["fpm-replica-realpath.conf", "fpm-replica-namespace.conf"])
def test_sample_configuration_serves_and_deploys(httpd, sample):
    app = os.path.join(httpd.root, "app")
    r1, r2 = make_release(app, "r1"), make_release(app, "r2")
    os.makedirs(os.path.join(httpd.root, "live", "app"))
    flip(app, "releases/r1")
    vhost = install_samples(httpd, app, sample)
    httpd.write_config(vhost, own_vhost=False)
    check = httpd.configtest()
    assert check.returncode == 0 and check.stderr.strip() == "Syntax OK", check.stderr
    httpd.start()
    harness.wait_for(lambda: all_ready(httpd), 20, what="sample replicas ready")
    assert "release=r1 inc=r1" in httpd.get("/version.php").text
    assert httpd.get("/static.txt").text == "static release=r1\n"
    # The probe lane a load balancer checks (a ping of a status socket).
    probe = httpd.get("/healthz.php")
    assert probe.status == 200 and probe.text.startswith("ok "), (probe.status, probe.text)
    flip(app, "releases/r2")
    harness.wait_for(lambda: "release=r2 inc=r2" in httpd.get("/version.php").text, 30,
                     what="the new release served")
    assert httpd.status()["release"] == r2
    # The masters log to httpd's error log (root:adm 0640 on Debian), not to
    # files of their own that php-fpm would create 0600.
    log = httpd.read_log()
    pids = {r["pid"] for r in httpd.status()["replicas"]}
    assert any(re.search(rf"NOTICE: fpm is running, pid {pid}\b", log) for pid in pids), log[-2000:]
