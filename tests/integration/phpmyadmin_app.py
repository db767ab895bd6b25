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

from releases import copy_app_release

PHPMYADMIN_DIR = "/usr/share/phpmyadmin"
# The login page (cookie authentication: no database needed) and a
# stylesheet of its theme.
LOGIN_PAGE = "/index.php"
THEME_CSS = "/themes/pmahomme/css/theme.css"


def installed():
    return os.path.isfile(os.path.join(PHPMYADMIN_DIR, "index.php"))


def make_release(app, rid):
    """app/releases/<rid>: the copy; returns its real path."""
    return copy_app_release(app, rid, PHPMYADMIN_DIR)


def is_login_page(body):
    """The whole login page, not an error page of phpMyAdmin's."""
    return 'id="login_form"' in body and "</html>" in body


def starts_like_login_page(prefix):
    """The first KiB of the login page (what the load generator keeps of a
    body): its document head with the theme's stylesheets."""
    return prefix.startswith("<!doctype html>") and "themes/pmahomme/css/theme.css" in prefix
