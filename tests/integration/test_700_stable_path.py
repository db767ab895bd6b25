"""Namespace mode (FpmReplicaStablePath): replicas started through the helper
with the current release bind-mounted over the stable path; php-fpm receives
SCRIPT_FILENAME, DOCUMENT_ROOT and PATH_TRANSLATED under the stable path while
Apache serves static files from the pinned release itself."""

import os

import harness
from releases import flip
from vhosts import pinned_vhost
from test_600_helper import setup, spawn_args  # noqa: F401 (fixture)


def test_php_gets_stable_paths_and_static_comes_from_the_release(httpd, setup):  # noqa: F811
    app, live = setup["app"], setup["live"]
    flip(app, "releases/r1")
    httpd.write_config(pinned_vhost(httpd, app).stable_path(live))
    for name in ("a", "b"):
        httpd.start_fpm(name, wrapper=spawn_args(setup, setup["r1"], "--read-only"))
    httpd.start()

    r = httpd.get("/version.php")
    assert r.status == 200, r.text
    assert "release=r1 inc=r1" in r.text
    assert f"docroot={{{live}/public}}" in r.text
    assert f"script={{{live}/public/version.php}}" in r.text
    # PATH_INFO naming an existing file (the front controller would rewrite
    # any other name in mod_proxy_fcgi's PATH_TRANSLATED lookup).
    r = httpd.get("/version.php/static.txt")
    assert "path_info=/static.txt" in r.text
    assert f"path_translated={live}/public/static.txt" in r.text, r.text
    # DirectoryIndex and the front controller reach index.php of the release.
    assert httpd.get("/").text == "index release=r1 uri={/}\n"
    assert httpd.get("/blog/7").text == "index release=r1 uri={/blog/7}\n"
    assert httpd.get("/static.txt").text == "static release=r1\n"
    assert os.listdir(live) == []


def configtest_line(httpd, setup, stable, with_release=True):  # noqa: F811
    app = setup["app"]
    flip(app, "releases/r1")
    httpd.write_config(pinned_vhost(httpd, app, release=with_release).stable_path(stable))
    r = httpd.configtest()
    assert r.returncode != 0, r.stderr
    lines = [l for l in r.stderr.splitlines() if "FPMR00026" in l]
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_bad_stable_paths_are_refused_at_configtest(httpd, setup):  # noqa: F811
    app, live = setup["app"], setup["live"]
    assert "is not an existing directory" in configtest_line(httpd, setup, f"{app}/nowhere")
    inside = os.path.join(app, "releases", "shared")
    os.makedirs(inside)
    assert "lies inside the releases" in configtest_line(httpd, setup, inside)
    assert "lies inside the releases" in configtest_line(httpd, setup, f"{app}/current/public")
    assert "needs FpmReplicaRelease" in configtest_line(httpd, setup, live, with_release=False)
    with open(os.path.join(live, "stray"), "w") as f:
        f.write("x")
    assert "is not empty" in configtest_line(httpd, setup, live)
