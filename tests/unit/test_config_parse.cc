// Directive argument parsing: every accepted form and every refusal.
#include <catch2/catch.hpp>

#include "config_parse.h"

using namespace fpmr;

namespace {
std::optional<ReplicaSpec> parse(std::vector<std::string> args, std::string* error) {
    return parse_replica(args, error);
}
}  // namespace

TEST_CASE("unix and tcp sockets parse", "[config]") {
    std::string error;
    auto u = parse_socket("unix:/run/fpm/a.sock", &error);
    REQUIRE(u);
    CHECK(u->kind == SocketSpec::Kind::Unix);
    CHECK(u->path == "/run/fpm/a.sock");
    CHECK(u->text() == "unix:/run/fpm/a.sock");
    CHECK(u->fpm_listen() == "/run/fpm/a.sock");
    CHECK(u->proxy_url("fpmr-1-a") == "unix:/run/fpm/a.sock|fcgi://fpmr-1-a");

    auto t = parse_socket("tcp:127.0.0.1:9000", &error);
    REQUIRE(t);
    CHECK(t->host == "127.0.0.1");
    CHECK(t->port == 9000);
    CHECK(t->fpm_listen() == "127.0.0.1:9000");
    CHECK(t->proxy_url("ignored") == "fcgi://127.0.0.1:9000");

    auto v6 = parse_socket("tcp:[::1]:9001", &error);
    REQUIRE(v6);
    CHECK(v6->host == "::1");
    CHECK(v6->fpm_listen() == "[::1]:9001");
    CHECK(v6->text() == "tcp:[::1]:9001");
}

TEST_CASE("bad sockets are refused with a reason naming the value", "[config]") {
    const char* bad[] = {
        "udp:127.0.0.1:9000", "/run/a.sock", "unix:", "unix:relative.sock",
        "tcp:127.0.0.1", "tcp:127.0.0.1:0", "tcp:127.0.0.1:70000", "tcp::9000",
        "tcp:::1:9000", "tcp:[::1]9000", "unix:/run/a b.sock", "tcp:host:port",
    };
    for (const char* text : bad) {
        std::string error;
        INFO(text);
        CHECK_FALSE(parse_socket(text, &error));
        CHECK_FALSE(error.empty());
    }
    std::string error;
    CHECK_FALSE(parse_socket("udp:127.0.0.1:9000", &error));
    CHECK(error == "socket 'udp:127.0.0.1:9000' has an unknown scheme (use unix:/path or tcp:HOST:PORT)");
    CHECK_FALSE(parse_socket("unix:/" + std::string(100, 'x'), &error));
    CHECK(error.find("longer than 91") != std::string::npos);
}

TEST_CASE("a full FpmReplica line parses", "[config]") {
    std::string error;
    auto spec = parse({"a", "unix:/run/a.sock", "status=unix:/run/a-status.sock",
                       "probe=tcp:127.0.0.1:9100"}, &error);
    REQUIRE(spec);
    CHECK(spec->name == "a");
    CHECK(spec->socket.path == "/run/a.sock");
    REQUIRE(spec->status);
    CHECK(spec->status->path == "/run/a-status.sock");
    REQUIRE(spec->probe);
    CHECK(spec->probe->port == 9100);
}

TEST_CASE("FpmReplica mistakes are refused", "[config]") {
    std::string error;
    CHECK_FALSE(parse({}, &error));
    CHECK(error.find("needs a NAME and a SOCKET") != std::string::npos);

    CHECK_FALSE(parse({"a"}, &error));
    CHECK(error == "replica 'a' has no SOCKET (unix:/path or tcp:HOST:PORT)");

    CHECK_FALSE(parse({"a", "status=unix:/x"}, &error));
    CHECK(error.find("has no SOCKET") != std::string::npos);

    CHECK_FALSE(parse({"bad name!", "unix:/run/a.sock"}, &error));
    CHECK(error.find("name 'bad name!'") != std::string::npos);

    CHECK_FALSE(parse({"a", "unix:/run/a.sock", "weight=3"}, &error));
    CHECK(error == "replica 'a': unknown option 'weight=3' (options are status=SOCKET and probe=SOCKET)");

    CHECK_FALSE(parse({"a", "unix:/run/a.sock", "extra"}, &error));
    CHECK(error.find("unexpected argument 'extra'") != std::string::npos);

    CHECK_FALSE(parse({"a", "unix:/run/a.sock", "status=unix:/s", "status=unix:/t"}, &error));
    CHECK(error.find("given twice") != std::string::npos);

    CHECK_FALSE(parse({"a", "unix:/run/a.sock", "status=udp:x"}, &error));
    CHECK(error.find("status=") != std::string::npos);
    CHECK(error.find("unknown scheme") != std::string::npos);
}

TEST_CASE("conflicts between replicas of one vhost", "[config]") {
    std::string error;
    std::vector<ReplicaSpec> existing{*parse({"a", "unix:/run/a.sock", "status=unix:/run/as.sock"}, &error)};

    CHECK(check_replica_conflicts(existing, *parse({"b", "unix:/run/b.sock"}, &error)).empty());
    CHECK(check_replica_conflicts(existing, *parse({"a", "unix:/run/b.sock"}, &error)) ==
          "replica name 'a' is declared twice in this virtual host");
    CHECK(check_replica_conflicts(existing, *parse({"b", "unix:/run/a.sock"}, &error)) ==
          "replica 'b' uses socket 'unix:/run/a.sock', already used by replica 'a'");
    CHECK(check_replica_conflicts(existing, *parse({"b", "unix:/run/b.sock", "status=unix:/run/as.sock"}, &error))
              .find("already used by replica 'a'") != std::string::npos);
    CHECK(check_replica_conflicts({}, *parse({"b", "unix:/run/b.sock", "status=unix:/run/b.sock"}, &error))
              .find("twice") != std::string::npos);

    std::vector<ReplicaSpec> many;
    for (size_t i = 0; i < kMaxReplicasPerVhost; ++i) {
        many.push_back(*parse({"r" + std::to_string(i), "unix:/run/r" + std::to_string(i)}, &error));
    }
    CHECK(check_replica_conflicts(many, *parse({"x", "unix:/run/x"}, &error)).find("limit") != std::string::npos);
}

TEST_CASE("durations", "[config]") {
    std::string error;
    CHECK(parse_duration_us("500ms", &error) == 500000);
    CHECK(parse_duration_us("2s", &error) == 2000000);
    CHECK(parse_duration_us("3", &error) == 3000000);
    CHECK(parse_duration_us("1m", &error) == 60000000);
    CHECK_FALSE(parse_duration_us("1h", &error));
    CHECK(error.find("unknown unit") != std::string::npos);
    CHECK_FALSE(parse_duration_us("", &error));
    CHECK_FALSE(parse_duration_us("-1s", &error));
    CHECK_FALSE(parse_duration_us("s", &error));
}

TEST_CASE("FpmReplicaHealthCheck options", "[config]") {
    std::string error;
    auto d = parse_health_check({}, &error);
    REQUIRE(d);
    CHECK(d->interval_us == 1000000);
    CHECK(d->timeout_us == 1000000);
    CHECK(d->fails == 2);
    CHECK(d->passes == 1);
    CHECK(d->path == "/ping");
    auto c = parse_health_check({"interval=500ms", "timeout=200ms", "fails=3", "passes=2", "path=/health"}, &error);
    REQUIRE(c);
    CHECK(c->interval_us == 500000);
    CHECK(c->timeout_us == 200000);
    CHECK(c->fails == 3);
    CHECK(c->passes == 2);
    CHECK(c->path == "/health");
    CHECK_FALSE(parse_health_check({"interval=1h2"}, &error));
    CHECK_FALSE(parse_health_check({"fails=0"}, &error));
    CHECK(error == "fails=0 must be a number from 1 to 100");
    CHECK_FALSE(parse_health_check({"path=ping"}, &error));
    CHECK_FALSE(parse_health_check({"weight=2"}, &error));
    CHECK(error.find("unknown option 'weight=2'") != std::string::npos);
    CHECK_FALSE(parse_health_check({"interval=1s", "timeout=2s"}, &error));
    CHECK(error == "timeout must not be longer than interval");
    // Only the interval set: the timeout follows it down (the smaller of 1 s and the interval).
    auto short_interval = parse_health_check({"interval=500ms"}, &error);
    REQUIRE(short_interval);
    CHECK(short_interval->timeout_us == 500000);
    CHECK(parse_health_check({"interval=5s"}, &error)->timeout_us == 1000000);
    CHECK_FALSE(parse_health_check({"interval=500ms", "timeout=1s"}, &error));
    CHECK(error == "timeout must not be longer than interval");
}

TEST_CASE("FpmReplicaWarmup: defaults, options, URL paths, off", "[config][warmup]") {
    std::string error;
    auto d = parse_warmup({}, &error);
    REQUIRE(d);
    CHECK(d->enabled);
    CHECK(d->timeout_us == 10000000);
    CHECK(d->script == "/usr/share/fpm-replica/warmup.php");
    CHECK(d->urls.empty());
    CHECK(*d == WarmupSpec{});  // the directive without arguments is its absence

    auto full = parse_warmup({"timeout=2s", "/", "script=/opt/fpmr/warm.php", "/index.php?cache=1"},
                             &error);
    REQUIRE(full);
    CHECK(full->enabled);
    CHECK(full->timeout_us == 2000000);
    CHECK(full->script == "/opt/fpmr/warm.php");
    CHECK(full->urls == std::vector<std::string>{"/", "/index.php?cache=1"});

    auto off = parse_warmup({"off"}, &error);
    REQUIRE(off);
    CHECK_FALSE(off->enabled);
}

TEST_CASE("FpmReplicaWarmup mistakes are refused with one sentence", "[config][warmup]") {
    auto refused = [](std::vector<std::string> args) {
        std::string error;
        auto spec = parse_warmup(args, &error);
        return spec ? std::string("accepted") : error;
    };
    CHECK(refused({"off", "timeout=1s"}) == "'off' must be the only argument");
    CHECK(refused({"/", "off"}) == "'off' must be the only argument");
    CHECK(refused({"timeout=50ms"}) == "timeout=50ms must be between 100ms and 10m");
    CHECK(refused({"timeout=11m"}) == "timeout=11m must be between 100ms and 10m");
    CHECK(refused({"timeout=soon"}).find("is not a number") != std::string::npos);
    CHECK(refused({"timeout=1s", "timeout=2s"}) == "timeout= given twice");
    CHECK(refused({"script=warmup.php"}).find("must be the absolute path of a .php file") != std::string::npos);
    CHECK(refused({"script=/usr/share/fpm-replica/warmup"}) != "accepted");
    CHECK(refused({"script=/usr/share/../warmup.php"}) != "accepted");
    CHECK(refused({"script=/a//warmup.php"}) != "accepted");
    CHECK(refused({"script=/a/b.php", "script=/a/c.php"}) == "script= given twice");
    CHECK(refused({"index.php"}).find("unknown argument 'index.php'") == 0);
    CHECK(refused({"timeout"}).find("unknown argument 'timeout'") == 0);
    CHECK(refused({"path=/x"}).find("unknown argument") == 0);
    CHECK(refused({"/a#b"}) == "'/a#b' must be a URL path such as /index.php");
    CHECK(refused({"/a\tb"}) != "accepted");
    std::vector<std::string> many(kMaxWarmupUrls + 1, "/");
    CHECK(refused(many) == "more than 32 URL paths");
    many.pop_back();
    CHECK(refused(many) == "accepted");
}
