"""A host with hundreds of sites: 300 name-based vhosts with two supervised
replicas each (600 php-fpm masters, 1,200 balancer members) start, answer on
every vhost, and roll through `apachectl graceful` in bounded time, because
replicas are replaced one at a time per vhost but many vhosts at once."""

import re

import harness
import many_sites

SITES = 300
# Wide bounds for a noisy 2-core machine; bench/sites.py prints the real
# figures (docs/benchmarks.md). One replica at a time across all vhosts took
# about 0.2 s a replica: 600 replicas would take 120 s.
START_BOUND_S = 150
ROLL_BOUND_S = 90


def test_300_sites_start_answer_and_roll(httpd):
    # At the stop all 600 masters exit at once; on a loaded 2-core machine
    # some took more than a 5 s drain timeout to (FPMR00063, killed: 2 runs
    # of 5 here). They have no request by then, so a longer timeout costs
    # nothing and keeps that warning meaningful.
    httpd.write_config(many_sites.sites_config(httpd, SITES, drain="20s"), own_vhost=False)
    httpd.start(timeout=30)
    started_s, before = many_sites.wait_all_ready(httpd, SITES, START_BOUND_S)
    assert len(before) == SITES
    assert many_sites.answer_on_every_site(httpd, SITES) == []
    masters = {pid for pids in before.values() for pid in pids.values()}
    assert len(masters) == 2 * SITES
    # The shared memory was made for this configuration, with room to grow:
    # twice its 1,200 members; the 2 x 4 + 16 rows of ServerLimit 4 (the
    # minimum of 64).
    created = re.findall(r"FPMR00168: .*", httpd.read_log())
    assert len(created) == 1, created
    assert "for 2400 replica members (1200 configured)" in created[0], created[0]
    assert "and 64 httpd children" in created[0], created[0]

    httpd.graceful(timeout=60)
    rolled_s, after = many_sites.wait_all_replaced(httpd, SITES, before, ROLL_BOUND_S)
    assert many_sites.answer_on_every_site(httpd, SITES) == []
    httpd.stop(timeout=60)
    harness.wait_for(lambda: not any(harness.pid_alive(p) for p in httpd.replica_pids), 30,
                     what="every master stopped with httpd")
    print(f"{SITES} sites: ready {started_s:.1f}s after start, rolled {rolled_s:.1f}s "
          f"after graceful")
