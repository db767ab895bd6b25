// The status document's JSON.
#include <catch2/catch.hpp>

#include "status_render.h"

using namespace fpmr;

TEST_CASE("status document has the SPEC's fields, nulls where unknown", "[status]") {
    VhostStatus v;
    v.vhost = "app.local:8080";
    v.nonce = "abc";
    ReplicaStatus a;
    a.name = "a";
    a.socket = "unix:/run/a.sock";
    a.state = ReplicaState::Draining;
    a.admin_drained = true;
    a.health = HealthState::Passing;
    a.reason = "drained by the operator";
    a.pid = 1234;
    a.in_flight = 3;
    a.requests = 10234;
    a.failures = 1;
    a.restarts = 2;
    a.warmup = ReplicaStatus::Warmup{412, 0.25};
    ReplicaStatus b;
    b.name = "b\"x";
    b.socket = "tcp:127.0.0.1:9000";
    b.release = "/srv/app/releases/r2";
    v.replicas = {a, b};
    std::string json = render_status_json(v);
    CHECK(json.find("\"vhost\": \"app.local:8080\", \"mode\": \"realpath\"") != std::string::npos);
    CHECK(json.find("\"release\": null, \"release_link\": null, \"previous_release\": null, \"prepared\": null, "
                    "\"nonce\": \"abc\"") != std::string::npos);
    v.namespace_mode = true;
    CHECK(render_status_json(v).find("\"mode\": \"namespace\"") != std::string::npos);
    v.release_link = "/srv/app/current";
    v.prepared_release = "/srv/app/releases/r3";
    v.prepared_state = "ready";
    v.previous_release = "/srv/app/releases/r1";
    CHECK(render_status_json(v).find("\"release_link\": \"/srv/app/current\", \"previous_release\": "
                                     "\"/srv/app/releases/r1\", \"prepared\": "
                                     "{\"release\": \"/srv/app/releases/r3\", \"state\": \"ready\"}") !=
          std::string::npos);
    CHECK(json.find("{\"name\": \"a\", \"socket\": \"unix:/run/a.sock\", \"state\": \"draining\", "
                    "\"admin\": \"drained\", \"health\": \"passing\", \"reason\": \"drained by the operator\", "
                    "\"release\": null, \"pid\": 1234, \"in_flight\": 3, \"requests\": 10234, "
                    "\"failures\": 1, \"restarts\": 2, \"warmup\": {\"scripts\": 412, \"seconds\": 0.250}}") !=
          std::string::npos);
    CHECK(json.find("\"restarts\": 0, \"warmup\": null}") != std::string::npos);  // b: none yet
    CHECK(json.find("\"name\": \"b\\\"x\"") != std::string::npos);
    CHECK(json.find("\"admin\": \"active\", \"health\": \"unknown\", \"reason\": null") != std::string::npos);
    CHECK(json.find("\"release\": \"/srv/app/releases/r2\", \"pid\": null") != std::string::npos);
}

TEST_CASE("json_escape escapes control characters", "[status]") {
    CHECK(json_escape("a\\b\n\x01") == "\"a\\\\b\\n\\u0001\"");
}

TEST_CASE("Prometheus text format: families, labels, escaping", "[status]") {
    VhostStatus v;
    v.vhost = "app.test:8080";
    v.release = "/srv/app/releases/r\"2";
    ReplicaStatus a;
    a.name = "a";
    a.socket = "unix:/run/a.sock";
    a.state = ReplicaState::Draining;
    a.in_flight = 3;
    a.requests = 10234;
    a.failures = 1;
    a.restarts = 2;
    v.replicas = {a};
    std::string text = render_status_prometheus(v);
    CHECK(text.find("# TYPE fpm_replica_requests_total counter\nfpm_replica_requests_total"
                    "{vhost=\"app.test:8080\",replica=\"a\"} 10234\n") != std::string::npos);
    CHECK(text.find("fpm_replica_state{vhost=\"app.test:8080\",replica=\"a\",state=\"draining\"} 1\n") !=
          std::string::npos);
    CHECK(text.find("fpm_replica_state{vhost=\"app.test:8080\",replica=\"a\",state=\"ready\"} 0\n") !=
          std::string::npos);
    CHECK(text.find("fpm_replica_in_flight{vhost=\"app.test:8080\",replica=\"a\"} 3\n") != std::string::npos);
    CHECK(text.find("release=\"/srv/app/releases/r\\\"2\"} 1") != std::string::npos);
    CHECK(text.find("fpm_replica_info{vhost=\"app.test:8080\",replica=\"a\",socket=\"unix:/run/a.sock\"") !=
          std::string::npos);
    for (size_t at = 0; (at = text.find('\n', at)) != std::string::npos; ++at) {
        size_t start = text.rfind('\n', at - 1);
        std::string line = text.substr(start == std::string::npos ? 0 : start + 1,
                                       at - (start == std::string::npos ? 0 : start + 1));
        if (line[0] != '#') CHECK(line.rfind("fpm_replica_", 0) == 0);
    }
}

TEST_CASE("health-check latency appears once measured", "[status]") {
    VhostStatus v;
    v.vhost = "h:1";
    ReplicaStatus a;
    a.name = "a";
    v.replicas = {a};
    CHECK(render_status_prometheus(v).find("fpm_replica_health_check_seconds{") == std::string::npos);
    v.replicas[0].check_seconds = 0.0025;
    CHECK(render_status_prometheus(v).find(
              "fpm_replica_health_check_seconds{vhost=\"h:1\",replica=\"a\"} 0.002500\n") !=
          std::string::npos);
}
