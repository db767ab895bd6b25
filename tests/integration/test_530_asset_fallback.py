"""Asset continuity (FpmReplicaAssetFallback): a page rendered from r1 still
gets its hashed assets after the flip to r2, and a host still on r1 serves
an asset only r2 has; a deleted file outside the pattern stays deleted, PHP
is never served this way, and a path that is a directory in the pinned
release is not replaced by another release's file."""

import os

from releases import flip, make_release
from vhosts import pinned_vhost

PATTERN = '"^/(assets|fonts)/"'


def write(release, path, text):
    full = os.path.join(release, "public", path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(text)


def test_missing_assets_come_from_the_release_that_has_them(httpd):
    app = os.path.join(httpd.root, "app")
    r1, r2 = make_release(app, "r1"), make_release(app, "r2")
    write(r1, "assets/app.3f9c1e.js", "console.log('r1');\n")
    write(r1, "fonts/brand.woff2", "r1 font\n")
    write(r1, "assets/only-r1.php", "<?php echo 'php from r1';\n")
    write(r1, "assets/thing", "r1 file\n")
    write(r1, "page.txt", "r1 page\n")
    write(r2, "assets/app.77ab02.js", "console.log('r2');\n")
    write(r2, "assets/thing/index.txt", "r2 directory\n")
    flip(app, "releases/r2")
    httpd.write_config(pinned_vhost(httpd, app, extra=f"FpmReplicaAssetFallback {PATTERN} releases=3"))
    httpd.start_fpm("a")
    httpd.start_fpm("b")
    httpd.start()

    # r1's page, rendered before the flip, asks for its assets after it.
    r = httpd.get("/assets/app.3f9c1e.js")
    assert (r.status, r.text) == (200, "console.log('r1');\n")
    assert r.headers.get("X-Fpm-Replica-Release") == "r1"
    assert "javascript" in r.headers.get("Content-Type", "")
    assert httpd.request("HEAD", "/fonts/brand.woff2").status == 200
    # The pinned release's own assets need no fallback, and say nothing.
    r = httpd.get("/assets/app.77ab02.js")
    assert r.status == 200 and "X-Fpm-Replica-Release" not in r.headers
    # Outside the pattern, a deleted file stays deleted: the release's front
    # controller (make_release's .htaccess, as Laravel's) answers it.
    r = httpd.get("/page.txt")
    assert "r1 page" not in r.text and r.text.startswith("index release=r2 "), r.text
    # Never PHP: a script only r1 has is not run, nor shown.
    r = httpd.get("/assets/only-r1.php")
    assert "php from r1" not in r.text and "<?php" not in r.text, r.text
    assert r.text.startswith("index release=r2 ") and "X-Fpm-Replica-Release" not in r.headers
    # A directory in the pinned release is not replaced by r1's file.
    r = httpd.get("/assets/thing")
    assert "r1 file" not in r.text and "X-Fpm-Replica-Release" not in r.headers
    # Only GET and HEAD.
    r = httpd.post("/assets/app.3f9c1e.js", {"x": "1"})
    assert "console.log('r1')" not in r.text and "X-Fpm-Replica-Release" not in r.headers
    # Missing everywhere: the front controller's answer, as without the directive.
    assert httpd.get("/assets/app.000000.js").text.startswith("index release=r2 ")

    # Across a fleet: a host still on r1 that already holds r2 (the release
    # is copied to every host before the flips) serves r2's new asset.
    flip(app, "releases/r1")
    r = httpd.get("/assets/app.77ab02.js")
    assert (r.status, r.text) == (200, "console.log('r2');\n")
    assert r.headers.get("X-Fpm-Replica-Release") == "r2"


def test_bad_asset_fallback_directives_are_refused(httpd):
    from test_100_config import refusal
    assert refusal(httpd, "FpmReplica a unix:/run/a.sock\nFpmReplicaAssetFallback \"^/(assets\"") == \
        "FpmReplicaAssetFallback: '^/(assets' is not a regular expression"
    assert refusal(httpd, "FpmReplica a unix:/run/a.sock\nFpmReplicaAssetFallback ^/a/ releases=0") == \
        "FpmReplicaAssetFallback: releases=0 must be a number from 1 to 16"
