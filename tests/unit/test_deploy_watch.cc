// deploy --watch: when a new release's answers or health call for a rollback.
#include <catch2/catch.hpp>

#include "deploy_watch.h"

using namespace fpmr::cli;

TEST_CASE("a watched release is rolled back on its 5xx rate, not on a few answers", "[cli][watch]") {
    WatchRule rule;  // 5%, at least 10 answers
    CHECK_FALSE(judge_watch({0, 0}, rule, false));
    CHECK_FALSE(judge_watch({5, 5}, rule, false));        // too few to judge
    CHECK_FALSE(judge_watch({100, 5}, rule, false));      // exactly 5%
    auto why = judge_watch({100, 6}, rule, false);
    REQUIRE(why);
    CHECK(why->find("6 of its 100") != std::string::npos);
    CHECK(judge_watch({0, 0}, rule, true));               // every serving replica failing
    rule.max_error_rate = 0;
    CHECK(judge_watch({10, 1}, rule, false));
}

TEST_CASE("a release's answers and its replicas' health from the document", "[cli][watch]") {
    Document doc = Document::parse(R"({"mode": "namespace",
        "replicas": [{"name": "a", "release": "/r2", "health": "failing", "state": "failed"},
                     {"name": "b", "release": "/r1", "health": "passing", "state": "ready"}],
        "releases": [{"release": "/r2", "requests": 40, "server_errors": 30},
                     {"release": "/r1", "requests": 7, "server_errors": 0}]})");
    CHECK(answers_of(doc, "/r2").requests == 40);
    CHECK(answers_of(doc, "/r2").server_errors == 30);
    CHECK(answers_of(doc, "/none").requests == 0);
    CHECK(serving_replicas_unhealthy(doc, "/r2"));
    CHECK_FALSE(serving_replicas_unhealthy(doc, "/r1"));
    CHECK_FALSE(serving_replicas_unhealthy(doc, "/r3"));  // nobody serves it yet
    doc["mode"] = "realpath";                              // every replica serves every release
    CHECK_FALSE(serving_replicas_unhealthy(doc, "/r2"));
}
