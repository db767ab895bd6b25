"""Release directories for the pinning tests: each release's files carry its
own id as a literal, so a response can be checked for self-consistency."""

import os
import shutil

VERSION_PHP = """<?php
// The script and the file it includes from its own directory must agree.
$me = '@RID@';
$inc = include __DIR__ . '/inc.php';
header('Content-Type: text/plain');
echo 'release=', $me, ' inc=', $inc, ' docroot={', $_SERVER['DOCUMENT_ROOT'],
     '} script={', $_SERVER['SCRIPT_FILENAME'], '} path_info=', $_SERVER['PATH_INFO'] ?? '',
     ' path_translated=', $_SERVER['PATH_TRANSLATED'] ?? '', "\\n";
"""

INDEX_PHP = """<?php
header('Content-Type: text/plain');
echo 'index release=@RID@ uri={', $_SERVER['REQUEST_URI'], "}\\n";
"""


def make_release(app_root, rid):
    public = os.path.join(app_root, "releases", rid, "public")
    os.makedirs(public, exist_ok=True)
    files = {
        "version.php": VERSION_PHP.replace("@RID@", rid),
        "inc.php": f"<?php return '{rid}';\n",
        "index.php": INDEX_PHP.replace("@RID@", rid),
        "static.txt": f"static release={rid}\n",
        # The release the module pinned the request to, as the application
        # sees it (FastCGI parameters), beside the release its own file is in.
        "params.php": "<?php header('Content-Type: text/plain'); echo 'file=@RID@ release_id=', "
                      "$_SERVER['FPM_REPLICA_RELEASE_ID'] ?? '-', ' release=', "
                      "$_SERVER['FPM_REPLICA_RELEASE'] ?? '-', \"\\n\";\n".replace("@RID@", rid),
        # A front controller, as Laravel's and Symfony's public/.htaccess do,
        # which must leave the status location alone, as for mod_status.
        ".htaccess": "RewriteEngine On\nRewriteCond %{REQUEST_URI} !=/fpm-replica-status\n"
                     "RewriteCond %{REQUEST_FILENAME} !-f\nRewriteRule ^ index.php [L]\n",
    }
    with open(os.path.join(os.path.dirname(__file__), "..", "php", "slow.php")) as f:
        files["slow.php"] = f.read()
    for name, text in files.items():
        with open(os.path.join(public, name), "w") as f:
            f.write(text)
    for d in (app_root, os.path.join(app_root, "releases"), os.path.dirname(public), public):
        os.chmod(d, 0o755)
    return os.path.realpath(os.path.dirname(public))


def copy_app_release(app_root, rid, source_dir):
    """app_root/releases/<rid>: an installed application (`source_dir`, as
    it is) copied as `public/`, with beside it the suite's slow.php and the
    release markers release.txt and release.php (which reads release.txt
    from its own directory, so that a stale response shows). Returns the
    release's real path."""
    release = os.path.join(app_root, "releases", rid)
    public = os.path.join(release, "public")
    shutil.copytree(source_dir, public, symlinks=True)
    shutil.copy(os.path.join(os.path.dirname(__file__), "..", "php", "slow.php"), public)
    with open(os.path.join(public, "release.txt"), "w") as f:
        f.write(f"{rid}\n")
    with open(os.path.join(public, "release.php"), "w") as f:
        f.write("<?php header('Content-Type: text/plain'); readfile(__DIR__ . '/release.txt');\n")
    for d in (app_root, os.path.dirname(release), release):
        os.chmod(d, 0o755)
    return os.path.realpath(release)


def flip(app_root, target):
    """Atomic deploy: a new link beside `current`, renamed over it."""
    tmp = os.path.join(app_root, "current.tmp")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.rename(tmp, os.path.join(app_root, "current"))


def write_helper_conf(path, release_root, stable_path):
    """A fpm-replica-helper configuration (root-owned, 0644, as it requires)."""
    with open(path, "w") as f:
        f.write(f"# test helper configuration\nrelease-root {release_root}\n"
                f"stable-path {stable_path}\n")
    os.chmod(path, 0o644)
    return path
