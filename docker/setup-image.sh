#!/usr/bin/env bash
# Turns a Debian 12 system that has apache2 and php-fpm into the demo image:
# installs libapache2-mod-fpm-replica from DEB_DIR, two demo releases under
# /srv/app/releases, the php-fpm replica config (the package's own example)
# and the demo site, which replaces Debian's default site.
# docker/Dockerfile runs it; so does tests/integration/test_990_package.py,
# in a throwaway overlay of the test machine's root.
#
#   bash docker/setup-image.sh DEB_DIR
set -euo pipefail
deb_dir="$1"
here="$(cd "$(dirname "$0")" && pwd)"

dpkg -i "$deb_dir"/libapache2-mod-fpm-replica_*.deb
# The package's postinst enabled the module; say it again, as an operator would.
a2enmod -q fpm_replica

php_fpm="$(ls /usr/sbin/php-fpm* | sort -V | tail -n 1)"
examples=/usr/share/doc/libapache2-mod-fpm-replica/examples
install -d -m 0755 /etc/fpm-replica /srv/app/releases
zcat -f "$examples/php-fpm-replica.conf"* > /etc/fpm-replica/demo.conf
chmod 0644 /etc/fpm-replica/demo.conf
sed -e "s#@PHP_FPM@#$php_fpm#" "$here/fpm-replica-demo.conf" \
    > /etc/apache2/sites-available/fpm-replica-demo.conf

for release in demo-1 demo-2; do
    install -d -m 0755 "/srv/app/releases/$release/public"
    install -m 0644 "$here"/demo-site/* "/srv/app/releases/$release/public/"
    echo "$release" > "/srv/app/releases/$release/RELEASE"
done
ln -sfn releases/demo-1 /srv/app/current.tmp
mv -T /srv/app/current.tmp /srv/app/current

# The demo site takes the place of Debian's default site and its Listen 80.
a2dissite -q 000-default
: > /etc/apache2/ports.conf
a2ensite -q fpm-replica-demo
install -m 0755 "$here/entrypoint.sh" /usr/local/bin/fpm-replica-entrypoint
# Where httpd listens, for the entrypoint and for `apachectl` run later with
# `docker exec` alike (both read envvars).
grep -q FPMR_DEMO_LISTEN /etc/apache2/envvars \
    || echo 'export FPMR_DEMO_LISTEN="${FPMR_DEMO_LISTEN:-80}"' >> /etc/apache2/envvars
