"""Smooth rollouts on a real application: phpMyAdmin from Debian's package
(about 280 PHP files on its login page, most of them Debian's libraries in
/usr/share/php) as two releases, two supervised replicas of 4 workers, 10
clients on the login page beside a stylesheet, a release marker and a
seconds-long request. `fpm-replica deploy` to the release never served,
then `apachectl graceful`, in realpath and in namespace mode: zero failed
requests, every response from a release that was current, and the p99 of
the pages in the 2 s after each moment within a bound of the steady p99 of
the same run. The bound is looser than the done-when's 1.5x (bench/rollout.sh
prints the real ratio): a cold master's first pages take about 8 times a warm
one's, so the bound fails when warm-up does not happen, not when the machine
is noisy."""

import pytest

import phpmyadmin_app
import rollout
from phpmyadmin_app import LOGIN_PAGE

P99_BOUND = 2.5   # x steady p99 (measured: 1.05-1.3; cold: 2.7-20)
MAX_BOUND = 4.0   # x steady max (measured: under 1.5)
# Each new master compiles at least this many scripts before it is ready:
# the login page's, the release's own and Debian's libraries alike.
WORKING_SET = 150


@pytest.mark.parametrize("mode", rollout.MODES)
def test_deploy_and_graceful_restart_without_a_latency_spike(httpd, mode):
    moments = [("fpm-replica deploy", "deploy", "pma-2"),
               ("apachectl graceful", "graceful", "pma-2")]
    site, result, rows = rollout.run(httpd, mode, moments, releases=("pma-1", "pma-2"))
    print("\n" + rollout.format_rows(mode, rows))

    failed = result.failures()
    assert not failed, f"{len(failed)} failed of {result.summary()}: {failed[:3]}"
    assert all(r["status"] == 200 for r in result.records), result.summary()
    markers = [r["body"].strip() for r in result.records if r["path"] == "/release.php"]
    assert len(markers) > 50 and set(markers) == {"pma-1", "pma-2"}, set(markers)
    pages = [r for r in result.records if r["path"] == LOGIN_PAGE]
    bad = [r for r in pages if not phpmyadmin_app.starts_like_login_page(r["body"])]
    assert not bad, bad[0]["body"]
    page = site.httpd.get(LOGIN_PAGE)
    assert page.status == 200 and phpmyadmin_app.is_login_page(page.text), page.text[:2000]

    for name, _method, _rid in moments:
        row = rows[name]
        assert row["pages"] >= 20, (name, row)
        assert row["p99x"] <= P99_BOUND, (name, row, rows["steady"])
        assert row["maxx"] <= MAX_BOUND, (name, row, rows["steady"])
    # The graceful restart's masters warmed with the whole working set.
    for replica in site.httpd.status()["replicas"]:
        assert replica["warmup"] and replica["warmup"]["scripts"] >= WORKING_SET, replica
