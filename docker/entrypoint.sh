#!/bin/sh
# The image's entrypoint: httpd in the foreground, the module supervising
# the php-fpm replicas (started when httpd starts, stopped when it stops).
# FPMR_DEMO_LISTEN: httpd's Listen argument (default 80, set in envvars).
# docker stop sends SIGWINCH (graceful stop: in-flight requests finish).
set -e
. /etc/apache2/envvars
# What systemd-tmpfiles would create on a host (the package's tmpfiles.d).
mkdir -p "$APACHE_RUN_DIR" "$APACHE_LOCK_DIR" "$APACHE_LOG_DIR" /run/fpm-replica
rm -f "$APACHE_PID_FILE"
exec /usr/sbin/apache2 -D FOREGROUND "$@"
