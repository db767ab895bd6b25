"""A real application: Adminer, unmodified, from Debian's `adminer` package,
deployed as two release directories (each a copy of /usr/share/adminer, plus
beside it the suite's slow.php for seconds-long requests and two release
markers, release.txt and release.php, which reads release.txt from its own
directory, so that a stale response shows). Under load it is
flipped from one release to the other and back, with `apachectl graceful`
in between, in realpath and in namespace mode: zero failed requests, and its
pages and every asset they link render with the right content types."""

import html.parser
import os
import time
import urllib.parse

import pytest

import harness
from releases import copy_app_release, flip, write_helper_conf
from test_800_supervision import all_ready, replicas_serve
from vhosts import namespace_vhost, pinned_vhost

ADMINER_DIR = "/usr/share/adminer"
PAGES = ["/adminer/", "/editor/"]
ASSET_TYPES = {".css": "text/css", ".js": ("application/javascript", "text/javascript"),
               ".ico": ("image/x-icon", "image/vnd.microsoft.icon"), ".gif": "image/gif"}


class LinkedAssets(html.parser.HTMLParser):
    """The stylesheets, scripts and icons a page links."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "link" and a.get("href") and ("stylesheet" in a.get("rel", "") or
                                                 "icon" in a.get("rel", "")):
            self.urls.append(a["href"])
        elif tag == "script" and a.get("src"):
            self.urls.append(a["src"])


def make_adminer_release(app, rid):
    return copy_app_release(app, rid, ADMINER_DIR)


def check_pages_and_assets(httpd):
    for page in PAGES:
        r = httpd.get(page)
        assert r.status == 200, (page, r.status, r.text[:500])
        assert r.headers.get("Content-Type", "").startswith("text/html"), (page, r.headers)
        assert "<title>Login - " in r.text and 'name="auth[username]"' in r.text, r.text[:1000]
        parser = LinkedAssets()
        parser.feed(r.text)
        assert len(parser.urls) >= 3, (page, parser.urls)
        for url in parser.urls:
            path = urllib.parse.urljoin(page, url)
            asset = httpd.get(path)
            ext = os.path.splitext(urllib.parse.urlparse(path).path)[1]
            expected = ASSET_TYPES.get(ext)
            assert asset.status == 200, (path, asset.status)
            assert expected, f"{path}: an asset type this test does not know"
            ctype = asset.headers.get("Content-Type", "")
            assert ctype.startswith(expected), (path, ctype)
            assert len(asset.body) > 0, path


@pytest.fixture(params=["realpath", "namespace"])
def adminer(httpd, request):
    if not os.path.isfile(os.path.join(ADMINER_DIR, "adminer", "index.php")):
        pytest.fail("Debian's adminer package is not installed (tests/setup.sh installs it)")
    app = os.path.join(httpd.root, "app")
    releases = [make_adminer_release(app, rid) for rid in ("adminer-1", "adminer-2")]
    flip(app, "releases/adminer-1")
    if request.param == "realpath":
        vhost = pinned_vhost(httpd, app, status=True).spawn()
    else:
        live = os.path.join(app, "live")
        os.makedirs(live)
        conf = write_helper_conf(os.path.join(httpd.root, "conf", "helper.conf"),
                                 f"{app}/releases", live)
        vhost = namespace_vhost(httpd, app, live, conf)
    httpd.write_config(vhost)
    httpd.start()
    harness.wait_for(lambda: all_ready(httpd), 20, what="replicas ready")
    return {"app": app, "releases": releases, "mode": request.param}


def test_adminer_flips_and_graceful_under_load(httpd, adminer):
    app, (first, second), mode = adminer["app"], adminer["releases"], adminer["mode"]
    check_pages_and_assets(httpd)

    run = httpd.load([("/adminer/", 6), ("/editor/", 1), ("/adminer/static/default.css", 2),
                      ("/adminer/static/functions.js", 1), ("/externals/jush/jush.css", 1),
                      ("/release.txt", 1), ("/release.php", 2), ("/slow.php?ms=2000", 2)],
                     duration=16)
    try:
        time.sleep(2)
        t_flip = time.time()
        flip(app, "releases/adminer-2")
        harness.wait_for(lambda: replicas_serve(httpd, second, mode), 30, what="adminer-2 served")
        t_second = time.time()
        pids = {r["pid"] for r in all_ready(httpd)}
        httpd.graceful()
        harness.wait_for(lambda: replicas_serve(httpd, second, mode, not_pids=pids), 30,
                         what="every replica replaced after the graceful restart")
        t_flip_back = time.time()
        flip(app, "releases/adminer-1")
        harness.wait_for(lambda: replicas_serve(httpd, first, mode), 30,
                         what="adminer-1 served again")
        t_first = time.time()
        result = run.wait()
    finally:
        run.kill()
    print(f"adminer {mode}: {result.summary()}")

    not_ok = [r for r in result.records if r["status"] != 200]
    assert not not_ok, f"{len(not_ok)} not 200 of {result.summary()}: {not_ok[:3]}"
    assert len(result.records) > 1000, result.summary()
    slow = [r for r in result.records if r["path"].startswith("/slow.php")]
    assert len(slow) >= 8 and all("ms=2000" in r["body"] for r in slow), slow[:3]
    # The release markers: each response from the release the symlink named
    # for the whole of the request (flips in flight excepted).
    expected_windows = [(0, t_flip, "adminer-1"), (t_second, t_flip_back, "adminer-2"),
                        (t_first, float("inf"), "adminer-1")]
    markers = [r for r in result.records if r["path"] in ("/release.txt", "/release.php")]
    stale = [r for r in markers for start, end, rid in expected_windows
             if r["start"] >= start and r["end"] <= end and r["body"].strip() != rid]
    assert len(markers) > 100 and not stale, (len(markers), stale[:3])
    assert {r["body"].strip() for r in markers} == {"adminer-1", "adminer-2"}
    pages = [r for r in result.records if r["path"] in PAGES]
    assert all("Login - Adminer" in r["body"] or "Login - Editor" in r["body"]
               for r in pages), [r["body"][:200] for r in pages[:3]]
    check_pages_and_assets(httpd)
