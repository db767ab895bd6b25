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
    a.pid = 1234;
    a.in_flight = 3;
    a.requests = 10234;
    a.failures = 1;
    a.restarts = 2;
    ReplicaStatus b;
    b.name = "b\"x";
    b.socket = "tcp:127.0.0.1:9000";
    b.release = "/srv/app/releases/r2";
    v.replicas = {a, b};
    std::string json = render_status_json(v);
    CHECK(json.find("\"vhost\": \"app.local:8080\"") != std::string::npos);
    CHECK(json.find("\"release\": null, \"nonce\": \"abc\"") != std::string::npos);
    CHECK(json.find("{\"name\": \"a\", \"socket\": \"unix:/run/a.sock\", \"state\": \"draining\", "
                    "\"release\": null, \"pid\": 1234, \"in_flight\": 3, \"requests\": 10234, "
                    "\"failures\": 1, \"restarts\": 2}") != std::string::npos);
    CHECK(json.find("\"name\": \"b\\\"x\"") != std::string::npos);
    CHECK(json.find("\"release\": \"/srv/app/releases/r2\", \"pid\": null") != std::string::npos);
}

TEST_CASE("json_escape escapes control characters", "[status]") {
    CHECK(json_escape("a\\b\n\x01") == "\"a\\\\b\\n\\u0001\"");
}
