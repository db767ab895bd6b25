"""Hundreds of sites on one httpd: the shared memory is sized from the
configuration when httpd starts (300 sites start, answer and roll:
test_875_many_sites.py); a configuration whose memory could never be made
is refused at configtest with one line; and a graceful restart that brings more replicas
than the running httpd has room for leaves those out with one line per vhost
(stop and start makes room) instead of stopping every site."""

import os
import re
import time

import harness
import many_sites
from releases import make_release
from vhosts import VhostConfig


def site_vhost(httpd, name, replicas, spawn_conf=None, sockets=None, app=None):
    """A name-based vhost `name` on httpd's one port. Its replicas listen on
    their own sockets under run/ (supervised when spawn_conf is given), or on
    `sockets` ({replica: socket path}) started by the test. With `app`, its
    requests are pinned to the release `app`/current names."""
    lines = [f"<VirtualHost 127.0.0.1:{httpd.port}>",
             f"    ServerName {name}"]
    if app:
        lines += [f"    DocumentRoot {app}/current/public",
                  f"    FpmReplicaRelease {app}/current",
                  f"    <Directory {app}/releases>", "        Require all granted",
                  "    </Directory>"]
    else:
        lines.append(f"    DocumentRoot {httpd.root}/htdocs")
    if spawn_conf:
        lines.append(f'    FpmReplicaSpawn "{harness.php_fpm_binary()} --nodaemonize '
                     f'--fpm-config {spawn_conf}"')
        lines.append("    FpmReplicaDrainTimeout 5s")
    for replica in replicas:
        sock = sockets[replica] if sockets else os.path.join(
            httpd.root, "run", f"{name.split('.')[0]}-{replica}.sock")
        lines.append(f"    FpmReplica {replica} unix:{sock}")
    lines += ["    " + line for line in VhostConfig(httpd).handlers().text().splitlines()]
    lines.append("</VirtualHost>")
    return "\n".join(lines)


def write_sites(httpd, vhosts, extra_main="", server_limit=4):
    """httpd's configuration with these complete vhosts and the htdocs
    directory they share."""
    main = "\n".join([f"<Directory {httpd.root}/htdocs>", "    Require all granted",
                      "</Directory>", extra_main])
    httpd.write_config("\n".join(vhosts), extra_main=main, own_vhost=False,
                       server_limit=server_limit)


def get(httpd, host, path, timeout=10):
    return httpd.get(path, headers={"Host": host}, timeout=timeout)


def status(httpd, host):
    doc = httpd.status(headers={"Host": host})
    assert doc["vhost"] == f"{host}:{httpd.port}", doc["vhost"]
    return doc


def ready(httpd, host):
    reps = status(httpd, host)["replicas"]
    return reps if reps and all(r["state"] == "ready" and r["pid"] for r in reps) else None


def tag_lines(httpd, tag):
    return [line for line in httpd.read_log().splitlines() if f"{tag}:" in line]


def test_a_graceful_restart_beyond_the_memory_leaves_out_what_does_not_fit(httpd):
    """Started with one supervised site, the blocks hold 256 members. A
    graceful restart to a configuration of 261 keeps httpd and every running
    site up, binds what fits in configuration order, leaves out the rest
    with one line per vhost, and a stop and start makes room for all."""
    conf = many_sites.ondemand_fpm_conf(httpd.root, status_sockets=False)
    shared_a = httpd.start_fpm("fill-a", workers=2)
    shared_b = httpd.start_fpm("fill-b", workers=2)
    fill_sockets = {"a": shared_a.listen, "b": shared_b.listen}
    keep = site_vhost(httpd, "keep.test", ("a", "b"), spawn_conf=conf)  # 4 members
    write_sites(httpd, [keep])
    httpd.start()
    harness.wait_for(lambda: ready(httpd, "keep.test"), 20, what="keep.test ready")
    created = tag_lines(httpd, "FPMR00168")
    assert len(created) == 1 and "for 256 replica members (4 configured)" in created[0], created

    # 4 + 125 x 2 = 254 members fit; late.test's a and b take the last two
    # slots, its c finds none; gone.test (supervised: 4 members) finds none.
    fillers = [site_vhost(httpd, f"fill{i}.test", ("a", "b"), sockets=fill_sockets)
               for i in range(125)]
    late = site_vhost(httpd, "late.test", ("a", "b", "c"), sockets={
        "a": shared_a.listen, "b": shared_b.listen, "c": httpd.sock("late-c")})
    gone = site_vhost(httpd, "gone.test", ("a", "b"), spawn_conf=conf)
    write_sites(httpd, [keep] + fillers + [late, gone])
    assert httpd.configtest().returncode == 0  # a new start would make room: nothing to refuse
    httpd.expect_log(r"FPMR00166",
                     r"FPMR00009: no usable replica for gone\.test",  # its PHP request below
                     r"AH01170")                                       # mod_proxy_balancer's 503
    main_pid = httpd.main_pid
    httpd.graceful(timeout=30)
    assert httpd.pid() == main_pid and harness.pid_alive(main_pid)

    left_out = tag_lines(httpd, "FPMR00166")
    assert len(left_out) == 2, left_out
    assert "late.test:" in left_out[0] and "replica 'c' left out" in left_out[0], left_out[0]
    assert "holds 256 replica members" in left_out[0], left_out[0]
    assert "gone.test:" in left_out[1] and "replicas 'a', 'b' left out" in left_out[1], left_out[1]
    assert "Stop and start httpd" in left_out[1], left_out[1]

    # Every site that fits answers: the running one (rolled by the graceful
    # restart), every filler, and late.test on the replicas it has.
    harness.wait_for(lambda: ready(httpd, "keep.test"), 30, what="keep.test rolled and ready")
    assert get(httpd, "keep.test", "/fast.php").status == 200
    for i in range(125):
        r = get(httpd, f"fill{i}.test", "/fast.php")
        assert r.status == 200, (i, r.status, r.text)
    assert [r["name"] for r in status(httpd, "late.test")["replicas"]] == ["a", "b"]
    assert {get(httpd, "late.test", "/fast.php").status for _ in range(4)} == {200}
    # The left-out site: no replica, no master started for it, 503.
    assert status(httpd, "gone.test")["replicas"] == []
    assert get(httpd, "gone.test", "/fast.php").status == 503
    assert not os.path.exists(os.path.join(httpd.root, "run", "gone-a.sock"))
    assert not os.path.exists(os.path.join(httpd.root, "run", "gone-a.sock.alt"))

    # What the line advises: a stop and start sizes the memory for this
    # configuration, and every replica is there.
    httpd.stop(timeout=30)
    httpd.start()
    harness.wait_for(lambda: ready(httpd, "gone.test"), 30, what="gone.test's masters ready")
    assert get(httpd, "gone.test", "/fast.php").status == 200
    assert [r["name"] for r in status(httpd, "late.test")["replicas"]] == ["a", "b", "c"]
    created = tag_lines(httpd, "FPMR00168")
    assert len(created) == 2 and "(261 configured)" in created[1], created
    assert len(tag_lines(httpd, "FPMR00166")) == 2  # none since


def test_release_symlinks_beyond_the_memory_after_a_graceful_restart_stay_pinned(httpd):
    """Started without FpmReplicaRelease, the blocks hold 64 release
    symlinks. After a graceful restart to 70 pinned vhosts, the 6 symlinks
    without a slot of their own are named once each (FPMR00167) and their
    requests are pinned all the same."""
    shared_a = httpd.start_fpm("fill-a", workers=2)
    shared_b = httpd.start_fpm("fill-b", workers=2)
    sockets = {"a": shared_a.listen, "b": shared_b.listen}
    write_sites(httpd, [site_vhost(httpd, "first.test", ("a", "b"), sockets=sockets)])
    httpd.start()
    apps = []
    for i in range(70):
        app = os.path.join(httpd.root, "apps", f"app{i}")
        make_release(app, f"r{i}")
        os.symlink(f"releases/r{i}", os.path.join(app, "current"))
        apps.append(app)
    write_sites(httpd, [site_vhost(httpd, "first.test", ("a", "b"), sockets=sockets)] +
                [site_vhost(httpd, f"app{i}.test", ("a", "b"), sockets=sockets, app=app)
                 for i, app in enumerate(apps)])
    httpd.expect_log(r"FPMR00167")
    httpd.graceful(timeout=30)
    full = tag_lines(httpd, "FPMR00167")
    assert len(full) == 6, full
    assert all("holds 64 release symlinks" in line for line in full), full[0]
    named = {re.search(r"FpmReplicaRelease (\S+):", line).group(1) for line in full}
    assert len(named) == 6 and named <= {f"{app}/current" for app in apps}, named
    for i in range(70):
        r = get(httpd, f"app{i}.test", "/version.php")
        assert r.status == 200 and r.text.startswith(f"release=r{i} inc=r{i} "), (i, r.text)


def test_memory_that_could_never_be_made_is_refused_at_configtest(httpd):
    # 32 vhosts of 32 supervised replicas: 2048 members. With the event
    # MPM's largest ServerLimit each of its 40016 possible children keeps a
    # row of 2048 counts: 316 MiB, above the 256 MiB bound.
    vhosts = [site_vhost(httpd, f"v{i}.test", [f"r{j}" for j in range(32)], spawn_conf="/nonexistent")
              for i in range(32)]
    write_sites(httpd, vhosts)
    r = httpd.configtest()
    assert r.returncode == 0, r.stderr  # ServerLimit 4: a few MiB
    write_sites(httpd, vhosts, server_limit=20000)
    r = httpd.configtest()
    assert r.returncode != 0
    lines = [line for line in r.stderr.splitlines() if "FPMR" in line]
    assert len(lines) == 1, r.stderr
    assert "FPMR00165: ServerLimit 20000 with 2048 replica members needs" in lines[0], lines[0]
    assert "lower ServerLimit" in lines[0], lines[0]


def test_more_members_than_one_httpd_holds_are_refused_at_configtest(httpd):
    # 257 vhosts of 32 supervised replicas: 16448 members, above 16384.
    vhosts = [site_vhost(httpd, f"v{i}.test", [f"r{j}" for j in range(32)], spawn_conf="/nonexistent")
              for i in range(257)]
    write_sites(httpd, vhosts)
    t0 = time.monotonic()
    r = httpd.configtest()
    print(f"configtest of 257 x 32 replicas: {time.monotonic() - t0:.1f}s")
    assert r.returncode != 0
    lines = [line for line in r.stderr.splitlines() if "FPMR" in line]
    assert len(lines) == 1, r.stderr
    assert "FPMR00164: the configuration declares 16448 replica members" in lines[0], lines[0]
    assert "at most 16384 of each" in lines[0], lines[0]
