"""Warm-up URL paths (FpmReplicaWarmup /path ...): at a graceful restart
each replacement master is sent every path once, through httpd itself,
before it takes a request; the header that steers those requests to the
starting master never reaches PHP, and a client that forges it (a guessed
token) is steered like anyone else, even while a real warm-up is running."""

import os
import pwd
import re
import secrets
import socket
import time

import harness
from test_765_warmup_rollout import fpm_command, install_warmup_script
from test_800_supervision import all_ready, spawn_vhost

# Appends one line per request to a log the test reads: which master
# answered (its workers' parent), when, the path, and whether the warm-up
# header reached PHP. ?hang=MS keeps the request running that long.
WARM_PHP = r"""<?php
$until = microtime(true) + intval($_GET['hang'] ?? 0) / 1000;
while (microtime(true) < $until) { usleep(20000); }
$line = sprintf("%d %.6f %s header=%s\n", posix_getppid(), microtime(true),
                $_SERVER['REQUEST_URI'], isset($_SERVER['HTTP_FPM_REPLICA_WARMUP']) ? 'seen' : 'absent');
file_put_contents('@LOG@', $line, FILE_APPEND | LOCK_EX);
header('Content-Type: text/plain');
echo 'master=', posix_getppid(), "\n";
"""


def set_up(httpd, urls, timeout="10s"):
    script = install_warmup_script(httpd)
    log_dir = os.path.join(httpd.root, "warm-log")
    # /warm.php, and /warm/ through DirectoryIndex (mod_dir's subrequest).
    os.makedirs(os.path.join(httpd.root, "htdocs", "warm"))
    for path in ("warm.php", "warm/index.php"):
        with open(os.path.join(httpd.root, "htdocs", path), "w") as f:
            f.write(WARM_PHP.replace("@LOG@", os.path.join(log_dir, "requests.log")))
    os.makedirs(log_dir)
    user = pwd.getpwnam(harness.RUN_USER)  # the supervised workers' user
    os.chown(log_dir, user.pw_uid, user.pw_gid)
    httpd.write_config(spawn_vhost(httpd, command=fpm_command())
                       .add(f"FpmReplicaWarmup script={script} timeout={timeout} {urls}"))
    httpd.start()
    return {r["name"]: r["pid"] for r in harness.wait_for(lambda: all_ready(httpd), 15,
                                                           what="replicas ready")}


def requests_log(httpd):
    try:
        with open(os.path.join(httpd.root, "warm-log", "requests.log")) as f:
            return [line.split() for line in f if line.strip()]
    except FileNotFoundError:
        return []


def ready_times(httpd):
    """pid -> when the supervisor logged its new master ready (epoch s)."""
    times = {}
    for m in re.finditer(r"^\[\w+ (\w+ \d+ [\d:]+)\.(\d+) (\d+)\].*FPMR00038: .*new master \(pid (\d+)\) "
                         r"ready", httpd.read_log(), re.M):
        stamp = time.mktime(time.strptime(f"{m.group(1)} {m.group(3)}", "%b %d %H:%M:%S %Y"))
        times[int(m.group(4))] = stamp + int(m.group(2)) / 1e6
    return times


def replaced(httpd, before):
    reps = all_ready(httpd)
    return reps if reps and all(r["pid"] not in before.values() for r in reps) else None


def test_each_replacement_requests_the_url_paths_through_httpd_before_it_is_ready(httpd):
    before = set_up(httpd, "/warm.php /warm/ /warm.php?second=1")
    # At the first start only a master with a ready sibling warms: the very
    # first has nobody to serve while it would wait.
    first = {int(line[0]) for line in requests_log(httpd)}
    assert len(first) <= 1 and first <= set(before.values()), (first, before)
    httpd.graceful()
    new = {r["pid"] for r in harness.wait_for(lambda: replaced(httpd, before), 30,
                                              what="every replica replaced")}
    lines = requests_log(httpd)
    ready = ready_times(httpd)
    for pid in new:
        mine = [line for line in lines if int(line[0]) == pid]
        assert [line[2] for line in mine] == ["/warm.php", "/warm/", "/warm.php?second=1"], lines
        # Answered by the new master before the supervisor made it ready.
        assert all(float(line[1]) < ready[pid] for line in mine), (mine, ready)
        assert all(line[3] == "header=absent" for line in mine), mine
    assert "FPMR00177" not in httpd.read_log()


def test_a_forged_warmup_header_is_steered_like_any_request(httpd):
    before = set_up(httpd, "/warm.php?hang=2500", timeout="20s")
    httpd.graceful()
    # a's replacement is starting, held in its warm-up by the hanging path.
    harness.wait_for(lambda: httpd.read_log().count("FPMR00029") >= 3, 15,
                     what="a replacement started")
    time.sleep(0.5)  # past its readiness ping, into the hanging URL path
    forged = []
    for slot in range(0, 8):  # every slot a small site could have, with a guessed token
        s = socket.create_connection(("127.0.0.1", httpd.port), timeout=10)
        s.sendall(f"GET /warm.php HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n"
                  f"FPM-Replica-Warmup: {slot}.{secrets.token_hex(16)}\r\n\r\n".encode())
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
        s.close()
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        forged.append(int(re.search(rb"master=(\d+)", answer).group(1)))
    serving = set(before.values())
    assert set(forged) <= serving, (forged, before)
    lines = requests_log(httpd)
    assert all(line[3] == "header=absent" for line in lines), lines
    harness.wait_for(lambda: replaced(httpd, before), 40, what="every replica replaced")
