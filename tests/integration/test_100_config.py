"""FpmReplica configuration: every mistake is refused at configtest with one
line naming the directive and the value; missing proxy modules too."""

import pytest

import harness
from vhosts import steering_vhost


def refusal(httpd, vhost_lines, **kw):
    httpd.write_config(f"DocumentRoot {httpd.root}/htdocs\n" + vhost_lines, **kw)
    r = httpd.configtest()
    assert r.returncode != 0, r.stdout + r.stderr
    lines = [l for l in r.stderr.splitlines() if l.startswith("FpmReplica")]
    assert len(lines) == 1, r.stderr
    return lines[0]


@pytest.mark.parametrize("line, message", [
    ("FpmReplica a udp:127.0.0.1:9000",
     "FpmReplica: socket 'udp:127.0.0.1:9000' has an unknown scheme (use unix:/path or tcp:HOST:PORT)"),
    ("FpmReplica a",
     "FpmReplica: replica 'a' has no SOCKET (unix:/path or tcp:HOST:PORT)"),
    ("FpmReplica a unix:/run/a.sock weight=2",
     "FpmReplica: replica 'a': unknown option 'weight=2' (options are status=SOCKET and probe=SOCKET)"),
    ("FpmReplica a unix:relative.sock",
     "FpmReplica: socket 'unix:relative.sock' must name an absolute path (unix:/run/x.sock)"),
    ("FpmReplica a tcp:127.0.0.1:99999",
     "FpmReplica: socket 'tcp:127.0.0.1:99999' has an invalid port (1-65535)"),
    ("FpmReplica a/b unix:/run/a.sock",
     "FpmReplica: name 'a/b' must be 1-32 letters, digits, '-' or '_'"),
    ("FpmReplica a unix:/run/a.sock status=ftp:x",
     "FpmReplica: replica 'a': status=: socket 'ftp:x' has an unknown scheme (use unix:/path or tcp:HOST:PORT)"),
])
def test_bad_replica_line_is_refused(httpd, line, message):
    assert refusal(httpd, line + "\nFpmReplica z unix:/run/z.sock") == message


def test_duplicate_name_is_refused(httpd):
    assert refusal(httpd, "FpmReplica a unix:/run/a.sock\nFpmReplica a unix:/run/b.sock") == \
        "FpmReplica: replica name 'a' is declared twice in this virtual host"


def test_duplicate_socket_is_refused(httpd):
    assert refusal(httpd, "FpmReplica a unix:/run/a.sock\nFpmReplica b unix:/run/a.sock") == \
        "FpmReplica: replica 'b' uses socket 'unix:/run/a.sock', already used by replica 'a'"


def test_replica_inside_location_is_refused(httpd):
    httpd.write_config(f"DocumentRoot {httpd.root}/htdocs\n<Location /x>\n"
                       "FpmReplica a unix:/run/a.sock\n</Location>")
    r = httpd.configtest()
    assert r.returncode != 0
    assert "FpmReplica not allowed in <Location> context" in r.stderr


@pytest.mark.parametrize("module, source", [
    ("proxy_fcgi_module", "mod_proxy_fcgi.c"),
    ("proxy_balancer_module", "mod_proxy_balancer.c"),
])
def test_missing_proxy_module_is_refused(httpd, module, source):
    line = refusal(httpd, "FpmReplica a unix:/run/a.sock\nFpmReplica b unix:/run/b.sock",
                   skip_modules=(module,))
    assert line.startswith(f"FpmReplica: needs {source}: add 'LoadModule {module} ...'")


def test_missing_mod_proxy_is_refused(httpd):
    # Without mod_proxy none of its satellites load either.
    line = refusal(httpd, "FpmReplica a unix:/run/a.sock",
                   skip_modules=("proxy_module", "proxy_fcgi_module", "proxy_balancer_module",
                                 "lbmethod_bybusyness_module"))
    assert line.startswith("FpmReplica: needs mod_proxy.c: add 'LoadModule proxy_module ...'")


def test_one_replica_is_a_warning(httpd):
    httpd.write_config(steering_vhost(httpd, names=("solo",)))
    r = httpd.configtest()
    assert r.returncode == 0, r.stderr
    assert "FPMR00001" in r.stderr and "only one replica ('solo')" in r.stderr


def test_good_config_passes_configtest(httpd):
    httpd.write_config(steering_vhost(httpd).replica("c", "tcp:127.0.0.1:9999",
                                                     status="tcp:127.0.0.1:9998"))
    r = httpd.configtest()
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "Syntax OK"


def test_handler_without_replicas_answers_500(httpd):
    httpd.write_config(f"DocumentRoot {httpd.root}/htdocs\n"
                       f"<Directory {httpd.root}/htdocs>\nRequire all granted\n</Directory>\n"
                       '<FilesMatch "\\.php$">\nSetHandler fpm-replica\n</FilesMatch>')
    httpd.start()
    assert httpd.get("/fast.php").status == 500
    httpd.expect_log(r"FPMR00014")
    assert "FPMR00014" in httpd.read_log()


@pytest.mark.parametrize("value", ["fpm-status", "/fpm-status?json", "/a#b"],
                         ids=["relative", "query", "fragment"])
def test_bad_pool_status_path_is_refused(httpd, value):
    assert refusal(httpd, f"FpmReplica a unix:/run/a.sock\nFpmReplicaPoolStatus {value}") == (
        f"FpmReplicaPoolStatus: '{value}' must be php-fpm's pm.status_path (a URL path such as "
        "/fpm-status) or off")


def test_pool_status_off_passes_configtest(httpd):
    httpd.write_config(f"DocumentRoot {httpd.root}/htdocs\nFpmReplica a unix:/run/a.sock\n"
                       "FpmReplicaPoolStatus off")
    r = httpd.configtest()
    assert r.returncode == 0, r.stderr
