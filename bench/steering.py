"""Steering benchmark: PHP hello world through mod_fpm_replica, through a plain
mod_proxy_balancer (lbmethod=bybusyness) over the same two replicas, and through
a single SetHandler proxy:unix socket, in one httpd, in one run, with wrk on
loopback. The figures to compare are the ratios of the medians.

Run it through bench/steering.sh, which installs and builds first."""

import shutil

import benchlib
from benchlib import harness


def vhost(httpd):
    a, b = httpd.sock("a"), httpd.sock("b")
    docroot = f"{httpd.root}/htdocs"
    return f"""
DocumentRoot {docroot}
<Directory {docroot}>
    Require all granted
</Directory>
Alias /module {docroot}
Alias /balancer {docroot}
Alias /single {docroot}
FpmReplica a unix:{a}
FpmReplica b unix:{b}
<Proxy balancer://plain>
    BalancerMember unix:{a}|fcgi://plain-a
    BalancerMember unix:{b}|fcgi://plain-b
    ProxySet lbmethod=bybusyness
</Proxy>
<Location /module>
    SetHandler fpm-replica
</Location>
<Location /balancer>
    SetHandler proxy:balancer://plain
</Location>
<Location /single>
    SetHandler "proxy:unix:{a}|fcgi://single"
</Location>
"""


def main():
    root = benchlib.server_root("steering-")
    httpd = harness.Httpd(root)
    try:
        httpd.write_config(vhost(httpd))
        httpd.start_fpm("a", workers=8)
        httpd.start_fpm("b", workers=8)
        httpd.start()
        med, cpu = benchlib.alternate({"module": httpd.url("/module/fast.php"),
                                       "balancer": httpd.url("/balancer/fast.php"),
                                       "single": httpd.url("/single/fast.php")}, httpd.main_pid)
    finally:
        httpd.cleanup()
        shutil.rmtree(root, ignore_errors=True)
    print(f"ratio module/balancer (bybusyness, same two replicas): "
          f"{med['module'] / med['balancer']:.3f}")
    print(f"ratio module/single socket:                           "
          f"{med['module'] / med['single']:.3f}")
    print(f"httpd CPU per request, module/balancer:               "
          f"{cpu['module'] / cpu['balancer']:.3f}")


if __name__ == "__main__":
    main()
