// The supervisor's pure decisions: command splitting, spawn plans, backoff.
#include <catch2/catch.hpp>

#include "supervision.h"

using namespace fpmr;

TEST_CASE("FpmReplicaSpawn commands split like sh words, without expansion", "[supervision]") {
    std::string error;
    CHECK(*split_command("/usr/sbin/php-fpm8.2 --nodaemonize --fpm-config /etc/fpm-replica/app.conf", &error) ==
          std::vector<std::string>{"/usr/sbin/php-fpm8.2", "--nodaemonize", "--fpm-config",
                                   "/etc/fpm-replica/app.conf"});
    CHECK(*split_command("  a 'b c'  \"d \\\"e\\\"\" f\\ g $HOME ", &error) ==
          std::vector<std::string>{"a", "b c", "d \"e\"", "f g", "$HOME"});
    CHECK(*split_command("''", &error) == std::vector<std::string>{""});
    CHECK_FALSE(split_command("a 'b", &error));
    CHECK(error == "unclosed single quote");
    CHECK_FALSE(split_command("a \"b", &error));
    CHECK(error == "unclosed double quote");
    CHECK_FALSE(split_command("   ", &error));
    CHECK(error == "is empty");
}

TEST_CASE("a replica's spawn plan: environment, direct or through the helper", "[supervision]") {
    std::string error;
    SpawnRequest req;
    req.command = {"/usr/sbin/php-fpm8.2", "-F"};
    req.replica = *parse_replica({"a", "unix:/run/a.sock", "status=unix:/run/a-status.sock"}, &error);
    req.release_dir = "/srv/app/releases/r2";
    SpawnPlan direct = plan_spawn(req);
    CHECK(direct.argv == req.command);
    CHECK(direct.env == std::vector<std::string>{
              "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
              "FPM_REPLICA_NAME=a", "FPM_REPLICA_LISTEN=/run/a.sock",
              "FPM_REPLICA_STATUS_LISTEN=/run/a-status.sock", "FPM_REPLICA_PROBE_LISTEN=",
              "FPM_REPLICA_RELEASE=/srv/app/releases/r2"});

    req.stable_path = "/srv/app/live";
    req.helper_path = "/usr/libexec/fpm-replica-helper";
    req.helper_config = "/etc/fpm-replica/app.conf";
    CHECK(plan_spawn(req).argv ==
          std::vector<std::string>{"/usr/libexec/fpm-replica-helper", "spawn", "--release",
                                   "/srv/app/releases/r2", "--stable-path", "/srv/app/live",
                                   "--config", "/etc/fpm-replica/app.conf", "--",
                                   "/usr/sbin/php-fpm8.2", "-F"});
    req.helper_config.clear();
    CHECK(plan_spawn(req).argv.size() == 9);
}

TEST_CASE("crash restarts back off, then give up; a long run forgives", "[supervision]") {
    RestartBackoff b;
    int64_t t = 1000000000;
    CHECK(b.on_exit(t, 100) == t + 500000);
    CHECK(b.on_exit(t + 1, 100) == t + 1 + 1000000);
    CHECK(b.on_exit(t + 2, 100) == t + 2 + 2000000);
    CHECK(b.on_exit(t + 3, 100) == t + 3 + 4000000);
    CHECK(b.on_exit(t + 4, 100) == -1);  // fifth quick crash: failed
    b.reset();
    CHECK(b.on_exit(t, 100) == t + 500000);
    CHECK(b.on_exit(t + RestartBackoff::kWindowUs + 10, RestartBackoff::kWindowUs) ==
          t + RestartBackoff::kWindowUs + 10 + 500000);  // ran a minute: a first crash again
    CHECK(b.crashes() == 1);
}
