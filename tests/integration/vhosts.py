"""Vhost configuration snippets shared by the integration tests, the demo and
the benchmarks."""

import harness

HANDLERS = ['<FilesMatch "\\.php$">',
            "    SetHandler fpm-replica",
            "</FilesMatch>",
            '<Location "/fpm-replica-status">',
            "    SetHandler fpm-replica-status",
            "    Require ip 127.0.0.1",
            "</Location>"]


def replica_lines(httpd, names, status=False):
    return [f"FpmReplica {name} unix:{httpd.sock(name)}" +
            (f" status=unix:{httpd.sock(name)}.status" if status else "") for name in names]


def steering_vhost(httpd, names=("a", "b"), extra="", handler="fpm-replica"):
    lines = [f"DocumentRoot {httpd.root}/htdocs",
             f"<Directory {httpd.root}/htdocs>",
             "    Require all granted",
             "</Directory>"]
    lines += replica_lines(httpd, names)
    lines += [f"    SetHandler {handler}" if l == "    SetHandler fpm-replica" else l
              for l in HANDLERS]
    lines.append(extra)
    return "\n".join(lines)


def pinned_vhost(httpd, app_root, extra="", names=("a", "b"), status=False):
    lines = [f"DocumentRoot {app_root}/current/public",
             f"FpmReplicaRelease {app_root}/current",
             # Pinned requests are served from the real release path, so
             # access rules name the releases directory, not the symlink.
             f"<Directory {app_root}/releases>",
             "    Require all granted",
             "    AllowOverride FileInfo",
             "</Directory>"]
    lines += replica_lines(httpd, names, status)
    lines += HANDLERS
    lines.append(extra)
    return "\n".join(lines)


def spawn_lines(drain="5s"):
    """FpmReplicaSpawn with the supervised php-fpm configuration."""
    return [f'FpmReplicaSpawn "{harness.php_fpm_binary()} --nodaemonize --fpm-config '
            f'{harness.FPM_SUPERVISED_CONF}"',
            f"FpmReplicaDrainTimeout {drain}"]


def namespace_vhost(httpd, app_root, live, helper_conf, extra="", drain="5s"):
    """Supervised replicas in namespace mode, started through the helper."""
    return pinned_vhost(httpd, app_root, status=True, extra="\n".join(
        [f"FpmReplicaStablePath {live}",
         f"FpmReplicaHelper {harness.HELPER} config={helper_conf}"] + spawn_lines(drain) +
        [extra]))
