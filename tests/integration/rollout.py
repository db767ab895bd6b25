"""phpMyAdmin under load through a rollout, for the rollout test and
bench/rollout.py: the site in each mode (stock php-fpm, supervised replicas
in realpath or namespace mode), the moments of a rollout (a symlink flip,
`fpm-replica deploy`, `apachectl graceful`, a replica's crash, stock
php-fpm's `kill -USR2`), and the latency of the page requests that start in
the WINDOW seconds after each moment, as ratios to the steady state of the
same run: the QUIET seconds before every moment, pooled."""

import os
import shutil
import signal
import subprocess
import time

import harness
import phpmyadmin_app
from releases import flip, write_helper_conf
from test_800_supervision import all_ready, replicas_serve
from vhosts import namespace_vhost, pinned_vhost

WINDOW = 2.0  # seconds after a moment whose page requests count for it
QUIET = 3.0   # seconds of steady load before each moment
CLI = harness.CLI
RELEASES = ("pma-1", "pma-2", "pma-3", "pma-4")
# What runs under load: phpMyAdmin's login page (what the figures are of), a
# stylesheet of its theme, a release marker, and one seconds-long request.
LOAD = [(phpmyadmin_app.LOGIN_PAGE, 10), (phpmyadmin_app.THEME_CSS, 1),
        ("/release.php", 1), ("/slow.php?ms=3000", 1)]
MODES = ("realpath", "namespace")


class Site:
    """phpMyAdmin's releases under httpd.root/app, `current` on the first,
    served in `mode`, with warm-up unless `warmup` is False; start() brings
    it up."""

    def __init__(self, httpd, mode, releases=RELEASES, warmup=True):
        if not phpmyadmin_app.installed():
            raise RuntimeError("Debian's phpmyadmin package is not installed (tests/setup.sh "
                               "installs it)")
        self.httpd, self.mode, self.warmup = httpd, mode, warmup
        self.app = os.path.join(httpd.root, "app")
        self.releases = {rid: phpmyadmin_app.make_release(self.app, rid) for rid in releases}
        flip(self.app, f"releases/{releases[0]}")
        self.fpm = None

    def start(self):
        httpd = self.httpd
        if self.mode == "stock":
            # One php-fpm with as many workers as two replicas have, reloaded
            # with kill -USR2; pages straight through mod_proxy_fcgi.
            self.fpm = httpd.start_fpm("stock", workers=8)
            public = f"{self.app}/current/public"
            httpd.write_config("\n".join([
                f"DocumentRoot {public}",
                f"<Directory {self.app}>", "    Require all granted", "</Directory>",
                '<FilesMatch "\\.php$">',
                f'    SetHandler "proxy:unix:{httpd.sock("stock")}|fcgi://localhost"',
                "</FilesMatch>"]))
            httpd.start()
            return
        script = os.path.join(httpd.root, "share", "warmup.php")
        os.makedirs(os.path.dirname(script), exist_ok=True)
        shutil.copy(os.path.join(harness.SOURCE_DIR, "share", "warmup.php"), script)
        os.chmod(script, 0o644)
        if self.mode == "realpath":
            vhost = pinned_vhost(httpd, self.app, status=True).spawn()
        else:
            live = os.path.join(self.app, "live")
            os.makedirs(live, exist_ok=True)
            conf = write_helper_conf(os.path.join(httpd.root, "conf", "helper.conf"),
                                     f"{self.app}/releases", live)
            vhost = namespace_vhost(httpd, self.app, live, conf)
        httpd.write_config(vhost.add(f"FpmReplicaWarmup script={script}" if self.warmup else "FpmReplicaWarmup off"))
        httpd.start()
        harness.wait_for(lambda: all_ready(httpd), 30, what="replicas ready")

    # --- waiting for a rollout to end -----------------------------------------------
    def serving(self, rid, not_pids=()):
        return replicas_serve(self.httpd, self.releases[rid], self.mode, not_pids)

    def pids(self):
        return {r["pid"] for r in self.httpd.status()["replicas"]}

    # --- the moments: each returns once it is over ----------------------------------
    def nothing(self):
        """The control: a moment at which nothing happens, whose ratios are
        the noise of the figures themselves."""

    def flip_to(self, rid):
        flip(self.app, f"releases/{rid}")
        harness.wait_for(lambda: self.serving(rid), 30, what=f"{rid} served after the flip")

    def deploy(self, rid):
        r = subprocess.run([CLI, "--url",
                            self.httpd.url("/fpm-replica-status"), "--timeout", "60", "deploy",
                            self.releases[rid]], capture_output=True, text=True, timeout=90)
        if r.returncode != 0:
            raise RuntimeError(f"fpm-replica deploy failed: {r.stdout}{r.stderr}")
        harness.wait_for(lambda: self.serving(rid), 30, what=f"{rid} served after the deploy")

    def graceful(self, rid):
        before = self.pids()
        self.httpd.graceful()
        harness.wait_for(lambda: self.serving(rid, not_pids=before), 60,
                         what="every replica replaced after the graceful restart")

    def crash(self, rid):
        """SIGKILL of the first replica's master and its workers, as the OOM
        killer might; over once its successor is ready."""
        victim = self.httpd.status()["replicas"][0]["pid"]
        os.killpg(victim, signal.SIGKILL)
        harness.wait_for(lambda: self.serving(rid, not_pids={victim}), 30,
                         what="the crashed replica replaced")

    def reload_stock(self):
        """Stock php-fpm's graceful reload: kill -USR2 of its master; over
        once it answers again."""
        os.kill(self.fpm.pid, signal.SIGUSR2)
        time.sleep(0.2)
        harness.wait_for(lambda: self.httpd.get(phpmyadmin_app.LOGIN_PAGE).status == 200, 30,
                         what="stock php-fpm answering after its reload")


class Timeline:
    """The moments of one load run: name -> (start, end of its window)."""

    def __init__(self):
        self.moments = []

    def run(self, name, action, *args):
        """QUIET seconds of steady load, then `action`; its window is WINDOW
        seconds from its start, or until 1 s after it returned if later."""
        time.sleep(QUIET)
        start = time.time()
        action(*args)
        self.moments.append((name, start, max(start + WINDOW, time.time() + 1.0)))


def percentile(sorted_ms, q):
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))] if sorted_ms else float("nan")


def page_latencies(records, start, end, over_by=None):
    """Sorted ms of the page requests that started in [start, end) (and, with
    over_by, ended before it)."""
    return sorted((r["end"] - r["start"]) * 1000 for r in records
                  if r["path"] == phpmyadmin_app.LOGIN_PAGE and start <= r["start"] < end and
                  (over_by is None or r["end"] < over_by))


def stats(latencies):
    return {"pages": len(latencies), "p50": percentile(latencies, 0.50),
            "p99": percentile(latencies, 0.99), "max": latencies[-1] if latencies else float("nan")}


def measure(records, timeline):
    """{"steady": stats, moment: stats with "p50x", "p99x", "maxx" ratios}.
    Steady state: the page requests of the QUIET seconds before each moment
    (less the first half second, the tail of the previous one) that were
    over before it began: one that a moment holds up counts for neither."""
    steady_ms = []
    for _name, start, _end in timeline.moments:
        steady_ms += page_latencies(records, start - QUIET + 0.5, start, over_by=start)
    steady = stats(sorted(steady_ms))
    rows = {"steady": steady}
    for name, start, end in timeline.moments:
        row = stats(page_latencies(records, start, end))
        for key in ("p50", "p99", "max"):
            row[key + "x"] = row[key] / steady[key] if steady[key] else float("nan")
        rows[name] = row
    return rows


def format_rows(mode, rows):
    lines = [f"{'variant':14s} {'moment':22s} {'pages':>6s} {'p50 ms':>7s} {'p99 ms':>7s} "
             f"{'max ms':>7s} {'p50 x':>6s} {'p99 x':>6s} {'max x':>6s}"]
    for name, r in rows.items():
        ratios = ("" if name == "steady" else
                  f" {r['p50x']:6.2f} {r['p99x']:6.2f} {r['maxx']:6.2f}")
        lines.append(f"{mode:14s} {name:22s} {r['pages']:6d} {r['p50']:7.0f} {r['p99']:7.0f} "
                     f"{r['max']:7.0f}{ratios}")
    return "\n".join(lines)


def run(httpd, mode, moments, warm_seconds=4.0, releases=RELEASES, warmup=True):
    """Starts the site in `mode` (on `releases`, with or without warm-up), runs the load through `moments` (a list of
    (name, method name of Site, release id or None)), and returns
    (site, load result, rows of measure()). The load's first warm_seconds are its
    own warm-up (every worker's first requests), not steady state."""
    site = Site(httpd, mode, releases, warmup)
    site.start()
    load = httpd.load(LOAD, duration=600, timeout=60)
    try:
        time.sleep(warm_seconds)
        timeline = Timeline()
        for name, method, rid in moments:
            action = getattr(site, method)
            if rid is None:
                timeline.run(name, action)
            else:
                timeline.run(name, action, rid)
        time.sleep(1.0)
        load.stop()
        result = load.wait()
    finally:
        load.kill()
    return site, result, measure(result.records, timeline)
