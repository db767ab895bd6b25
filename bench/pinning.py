"""Pinning benchmark: the same release (behind a `current` symlink) served by
two vhosts of one httpd, one with FpmReplicaRelease at the default
FpmReplicaResolveInterval 0 (one readlink per request), one without pinning.
Static file and PHP, alternating rounds, wrk on loopback; the figure is the
ratio of the medians (target: pinning costs at most 2 %).

Run it through bench/pinning.sh, which installs and builds first."""

import os
import shutil

import benchlib
from benchlib import harness
from releases import flip, make_release


def vhost_body(httpd, app, pinned):
    lines = [f"DocumentRoot {app}/current/public",
             f"<Directory {app}/releases>", "    Require all granted", "</Directory>",
             f"<Directory {app}/current/public>", "    Require all granted", "</Directory>",
             f"FpmReplica a unix:{httpd.sock('a')}",
             f"FpmReplica b unix:{httpd.sock('b')}",
             '<FilesMatch "\\.php$">', "    SetHandler fpm-replica", "</FilesMatch>"]
    if pinned:
        lines.insert(1, f"FpmReplicaRelease {app}/current")
    return "\n".join(lines)


def main():
    root = benchlib.server_root("pinning-")
    httpd = harness.Httpd(root)
    app = os.path.join(root, "app")
    make_release(app, "r1")
    os.remove(os.path.join(app, "releases", "r1", "public", ".htaccess"))
    flip(app, "releases/r1")
    plain_port = harness.free_port()
    try:
        httpd.write_config(vhost_body(httpd, app, pinned=os.environ.get("AA") is None), extra_main=f"""
Listen 127.0.0.1:{plain_port}
<VirtualHost 127.0.0.1:{plain_port}>
ServerName plain.test
{vhost_body(httpd, app, pinned=False)}
</VirtualHost>""")
        httpd.start_fpm("a", workers=8)
        httpd.start_fpm("b", workers=8)
        httpd.start()
        plain = f"http://127.0.0.1:{plain_port}"
        med, cpu = benchlib.alternate({
            "pinned static": httpd.url("/static.txt"),
            "unpinned static": f"{plain}/static.txt",
            "pinned php": httpd.url("/version.php"),
            "unpinned php": f"{plain}/version.php",
        }, httpd.main_pid)
    finally:
        httpd.cleanup()
        shutil.rmtree(root, ignore_errors=True)
    for kind in ("static", "php"):
        ratio = med[f"pinned {kind}"] / med[f"unpinned {kind}"]
        cpu_ratio = cpu[f"pinned {kind}"] / cpu[f"unpinned {kind}"]
        print(f"{kind:6s}: throughput pinned/unpinned {ratio:.3f} (cost {100 * (1 - ratio):+.1f} %), "
              f"httpd CPU per request pinned/unpinned {cpu_ratio:.3f} "
              f"(cost {100 * (cpu_ratio - 1):+.1f} %)")


if __name__ == "__main__":
    main()
