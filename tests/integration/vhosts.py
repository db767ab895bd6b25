"""Vhost configuration snippets shared by the integration tests."""


def steering_vhost(httpd, names=("a", "b"), extra="", handler="fpm-replica"):
    lines = [f"DocumentRoot {httpd.root}/htdocs",
             f"<Directory {httpd.root}/htdocs>",
             "    Require all granted",
             "</Directory>"]
    for name in names:
        lines.append(f"FpmReplica {name} unix:{httpd.sock(name)}")
    lines += ['<FilesMatch "\\.php$">',
              f"    SetHandler {handler}",
              "</FilesMatch>",
              '<Location "/fpm-replica-status">',
              "    SetHandler fpm-replica-status",
              "    Require ip 127.0.0.1",
              "</Location>",
              extra]
    return "\n".join(lines)
