"""phpMyAdmin from Debian's `phpmyadmin` package, unmodified, as release
directories: the application the rollout test and bench/rollout.py measure,
big enough for a cold opcache to show (its login page runs about 300 PHP
files of the release and of the libraries Debian ships in /usr/share/php).

Each release is a copy of /usr/share/phpmyadmin as `public/`, plus beside it
the suite's slow.php for seconds-long requests and the release markers
release.txt and release.php (which reads release.txt from its own
directory), so that a response from the wrong release shows. Its
configuration stays Debian's (/etc/phpmyadmin, /var/lib/phpmyadmin/tmp for
Twig's compiled templates), which the supervised workers (www-data) read."""

import os
import shutil

import harness

PHPMYADMIN_DIR = "/usr/share/phpmyadmin"
# The login page (cookie authentication: no database needed) and a
# stylesheet of its theme.
LOGIN_PAGE = "/index.php"
THEME_CSS = "/themes/pmahomme/css/theme.css"


def installed():
    return os.path.isfile(os.path.join(PHPMYADMIN_DIR, "index.php"))


def make_release(app, rid):
    """app/releases/<rid>: the copy; returns its real path."""
    release = os.path.join(app, "releases", rid)
    public = os.path.join(release, "public")
    shutil.copytree(PHPMYADMIN_DIR, public, symlinks=True)
    shutil.copy(os.path.join(harness.PHP_DIR, "slow.php"), public)
    with open(os.path.join(public, "release.txt"), "w") as f:
        f.write(f"{rid}\n")
    with open(os.path.join(public, "release.php"), "w") as f:
        f.write("<?php header('Content-Type: text/plain'); readfile(__DIR__ . '/release.txt');\n")
    for d in (app, os.path.dirname(release), release):
        os.chmod(d, 0o755)
    return os.path.realpath(release)


def is_login_page(body):
    """The whole login page, not an error page of phpMyAdmin's."""
    return 'id="login_form"' in body and "</html>" in body


def starts_like_login_page(prefix):
    """The first KiB of the login page (what the load generator keeps of a
    body): its document head with the theme's stylesheets."""
    return prefix.startswith("<!doctype html>") and "themes/pmahomme/css/theme.css" in prefix
