"""Vhost configuration shared by the integration tests, the demo and the
benchmarks.

A VhostConfig builds the body of one <VirtualHost> directive by directive (in
the manner of mod_md's test configuration builder): a test asks for the
replicas, sockets and directives it wants instead of patching the text of a
ready-made vhost. Httpd.write_config takes a VhostConfig or a string."""

import harness


def fpm_command(fpm_config=None):
    """php-fpm in the foreground on `fpm_config`, by default the supervised
    test configuration: what FpmReplicaSpawn runs."""
    return (f"{harness.php_fpm_binary()} --nodaemonize --fpm-config "
            f"{fpm_config or harness.FPM_SUPERVISED_CONF}")


class VhostConfig:
    """The body of one vhost in four parts, which text() writes in this
    order whatever the order of the calls: the site (DocumentRoot,
    FpmReplicaRelease, <Directory> sections), the FpmReplica lines, the
    handlers, then every other directive and extra line in the order they
    were asked for. Every method returns the builder, so calls chain."""

    def __init__(self, httpd):
        self.httpd = httpd
        self._site = []
        self._replicas = []
        self._handlers = []
        self._directives = []

    def text(self):
        return "\n".join(self._site + self._replicas + self._handlers + self._directives)

    def __str__(self):
        return self.text()

    # --- the site ----------------------------------------------------------
    def document_root(self, path):
        self._site.append(f"DocumentRoot {path}")
        return self

    def release(self, path):
        self._site.append(f"FpmReplicaRelease {path}")
        return self

    def directory(self, path, *lines):
        """A <Directory> section with `lines` in it."""
        self._site += [f"<Directory {path}>"] + [f"    {line}" for line in lines] + ["</Directory>"]
        return self

    # --- replicas ----------------------------------------------------------
    def replica(self, name, socket=None, status=False, probe=False):
        """FpmReplica `name` at the address `socket`, by default unix:run/NAME.sock.
        `status` and `probe`: True for the replica's usual socket
        (run/NAME.sock.status, run/NAME.sock.probe), an address for another,
        False for none."""
        usual = self.httpd.sock(name)
        line = f"FpmReplica {name} {socket or f'unix:{usual}'}"
        if status:
            line += f" status={f'unix:{usual}.status' if status is True else status}"
        if probe:
            line += f" probe={f'unix:{usual}.probe' if probe is True else probe}"
        self._replicas.append(line)
        return self

    def replicas(self, names, **replica):
        """replica(name, **replica) for each of `names`."""
        for name in names:
            self.replica(name, **replica)
        return self

    # --- handlers ----------------------------------------------------------
    def handlers(self, php="fpm-replica"):
        """The handler `php` for .php files and the status handler at
        /fpm-replica-status, for loopback clients only."""
        self._handlers = ['<FilesMatch "\\.php$">',
                          f"    SetHandler {php}",
                          "</FilesMatch>",
                          '<Location "/fpm-replica-status">',
                          "    SetHandler fpm-replica-status",
                          "    Require ip 127.0.0.1",
                          "</Location>"]
        return self

    # --- vhost-wide directives -----------------------------------------------
    def stable_path(self, path):
        return self.add(f"FpmReplicaStablePath {path}")

    def helper(self, path, config):
        return self.add(f"FpmReplicaHelper {path} config={config}")

    def spawn(self, command=None, drain="5s"):
        """Supervised replicas: FpmReplicaSpawn `command` (fpm_command() by
        default) and FpmReplicaDrainTimeout `drain` (none if drain is None)."""
        self.add(f'FpmReplicaSpawn "{command or fpm_command()}"')
        return self.add(f"FpmReplicaDrainTimeout {drain}") if drain else self

    def health_check(self, args):
        return self.add(f"FpmReplicaHealthCheck {args}")

    def probe(self, path):
        return self.add(f"FpmReplicaProbe {path}")

    def add(self, text):
        """Configuration as given (a string, possibly of several lines, or a
        list of them) among the vhost-wide directives, after those asked for
        so far; empty strings add nothing."""
        for line in ([text] if isinstance(text, str) else text):
            if line:
                self._directives.append(line)
        return self


def steering_vhost(httpd, names=("a", "b"), extra="", handler="fpm-replica", **replica):
    """Replicas `names` (replica(name, **replica) each) serving htdocs."""
    return (VhostConfig(httpd)
            .document_root(f"{httpd.root}/htdocs")
            .directory(f"{httpd.root}/htdocs", "Require all granted")
            .replicas(names, **replica)
            .handlers(handler)
            .add(extra))


def pinned_vhost(httpd, app_root, extra="", names=("a", "b"), release=True, **replica):
    """Replicas `names` serving the release behind app_root/current, pinned
    (FpmReplicaRelease) unless `release` is False."""
    vhost = VhostConfig(httpd).document_root(f"{app_root}/current/public")
    if release:
        vhost.release(f"{app_root}/current")
    # Pinned requests are served from the real release path, so access rules
    # name the releases directory, not the symlink.
    return (vhost.directory(f"{app_root}/releases", "Require all granted",
                            "AllowOverride FileInfo")
            .replicas(names, **replica)
            .handlers()
            .add(extra))


def namespace_vhost(httpd, app_root, live, helper_conf, extra="", drain="5s"):
    """Supervised replicas in namespace mode, started through the helper."""
    return (pinned_vhost(httpd, app_root, status=True)
            .stable_path(live)
            .helper(harness.HELPER, helper_conf)
            .spawn(drain=drain)
            .add(extra))
