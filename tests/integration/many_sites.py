"""A host with many sites, as shared and agency hosts run them: `count`
name-based vhosts on one loopback port, each with two supervised replicas
(php-fpm `pm = ondemand`, so idle sites cost a master each and no workers).
Shared by the scaling test (test_875_many_sites.py) and bench/sites.py."""

import os
import time

import harness
from vhosts import VhostConfig


def ondemand_fpm_conf(root, status_sockets=True):
    """The supervised php-fpm configuration with `pm = ondemand`; without
    `status_sockets` for replicas that have no status= socket (php-fpm
    refuses an empty pm.status_listen)."""
    with open(harness.FPM_SUPERVISED_CONF) as f:
        lines = f.read().splitlines()
    out = []
    for line in lines:
        if line.startswith("pm = "):
            out += ["pm = ondemand", "pm.process_idle_timeout = 10s"]
        elif line.startswith("pm.max_children"):
            out.append("pm.max_children = 2")
        elif line.startswith("pm.status_listen") and not status_sockets:
            continue
        else:
            out.append(line)
    path = os.path.join(root, "conf", "fpm-ondemand.conf" if status_sockets else
                        "fpm-ondemand-no-status.conf")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return path


def site_name(i):
    return f"site{i}.test"


def sites_config(httpd, count, drain="5s"):
    """`count` <VirtualHost> blocks, each a site with replicas a and b."""
    command = f"{harness.php_fpm_binary()} --nodaemonize --fpm-config {ondemand_fpm_conf(httpd.root)}"
    blocks = []
    for i in range(count):
        sock = os.path.join(httpd.root, "run", f"s{i}")
        site = (VhostConfig(httpd)
                .document_root(f"{httpd.root}/htdocs")
                .directory(f"{httpd.root}/htdocs", "Require all granted"))
        for name in ("a", "b"):
            site.replica(name, socket=f"unix:{sock}-{name}.sock", status=f"unix:{sock}-{name}.st")
        site.handlers().spawn(command, drain)
        blocks.append(f"<VirtualHost 127.0.0.1:{httpd.port}>\n    ServerName {site_name(i)}\n"
                      f"{site.text()}\n</VirtualHost>")
    return "\n".join(blocks)


def status_of(httpd, i):
    r = httpd.get("/fpm-replica-status", headers={"Host": site_name(i)})
    assert r.status == 200, r.text
    return r.json()


def site_pids(httpd, count):
    """{site index: {replica name: pid}} once every replica of every site is
    ready, else None."""
    out = {}
    for i in range(count):
        reps = status_of(httpd, i)["replicas"]
        if not all(r["state"] == "ready" and r["pid"] for r in reps):
            return None
        out[i] = {r["name"]: r["pid"] for r in reps}
        httpd.replica_pids.update(out[i].values())
    return out


def wait_all_ready(httpd, count, timeout):
    """Seconds until every replica of every site is ready; {site: pids}."""
    began = time.monotonic()
    pids = harness.wait_for(lambda: site_pids(httpd, count), timeout, interval=0.2,
                            what=f"every replica of {count} sites ready")
    return time.monotonic() - began, pids


def wait_all_replaced(httpd, count, before, timeout):
    """After a graceful restart: seconds until every replica of every site
    is ready on a master other than the one in `before`."""
    began = time.monotonic()

    def replaced():
        now = site_pids(httpd, count)
        if not now:
            return None
        return now if all(now[i][n] != before[i][n] for i in now for n in now[i]) else None
    pids = harness.wait_for(replaced, timeout, interval=0.2,
                            what=f"every replica of {count} sites replaced")
    return time.monotonic() - began, pids


def answer_on_every_site(httpd, count):
    """GET a PHP script on every site; returns the sites that did not answer 200."""
    bad = []
    for i in range(count):
        r = httpd.get("/fast.php", headers={"Host": site_name(i)})
        if r.status != 200:
            bad.append((i, r.status))
    return bad


def pss_kib(pids):
    """Proportional set size of the processes (smaps_rollup), KiB."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total
