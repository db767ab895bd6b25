// php-fpm's JSON status page read into the pool figures, and the cache
// that lets one scrape per second query it.
#include <catch2/catch.hpp>

#include "pool_status.h"

using namespace fpmr;

namespace {
// What php-fpm 8.2 answers for /fpm-status?json.
const char* kStatus =
    R"({"pool":"www","process manager":"static","start time":1796140000,"start since":52,)"
    R"("accepted conn":17,"listen queue":2,"max listen queue":5,"listen queue len":4096,)"
    R"("idle processes":3,"active processes":1,"total processes":4,"max active processes":4,)"
    R"("max children reached":6,"slow requests":7})";
}  // namespace

TEST_CASE("php-fpm's JSON status page gives every pool figure", "[pool]") {
    auto status = parse_pool_status_json(kStatus);
    REQUIRE(status);
    CHECK((*status)[PoolFigure::AcceptedConnections] == 17);
    CHECK((*status)[PoolFigure::ListenQueue] == 2);
    CHECK((*status)[PoolFigure::MaxListenQueue] == 5);
    CHECK((*status)[PoolFigure::ListenQueueLength] == 4096);
    CHECK((*status)[PoolFigure::IdleProcesses] == 3);
    CHECK((*status)[PoolFigure::ActiveProcesses] == 1);
    CHECK((*status)[PoolFigure::TotalProcesses] == 4);
    CHECK((*status)[PoolFigure::MaxActiveProcesses] == 4);
    CHECK((*status)[PoolFigure::MaxChildrenReached] == 6);
    CHECK((*status)[PoolFigure::SlowRequests] == 7);
    // Not php-fpm's status page: nothing, and no exception.
    CHECK_FALSE(parse_pool_status_json(""));
    CHECK_FALSE(parse_pool_status_json("pool: www\naccepted conn: 17\n"));  // the text format
    CHECK_FALSE(parse_pool_status_json("[1, 2]"));
    CHECK_FALSE(parse_pool_status_json(R"({"accepted conn": 1})"));
    std::string negative = kStatus;
    negative.replace(negative.find("\"listen queue\":2"), 16, "\"listen queue\":-2");
    CHECK_FALSE(parse_pool_status_json(negative));
    std::string text_value = kStatus;
    text_value.replace(text_value.find("\"slow requests\":7"), 17, "\"slow requests\":\"7\"");
    CHECK_FALSE(parse_pool_status_json(text_value));
    CHECK_FALSE(parse_pool_status_json(std::string(kStatus).substr(0, 60)));
}

TEST_CASE("one query per second and member, however many scrapes", "[pool]") {
    PoolStatusCache cache{};
    CHECK_FALSE(cached_pool_status(cache));
    const int64_t t0 = 5000000;
    REQUIRE(claim_pool_status_refresh(cache, t0));
    // Another child scraping meanwhile does not query too.
    CHECK_FALSE(claim_pool_status_refresh(cache, t0 + 1000));
    store_pool_status(cache, parse_pool_status_json(kStatus), t0 + 2000);
    REQUIRE(cached_pool_status(cache));
    CHECK((*cached_pool_status(cache))[PoolFigure::SlowRequests] == 7);
    CHECK_FALSE(claim_pool_status_refresh(cache, t0 + 500000));  // fresh
    REQUIRE(claim_pool_status_refresh(cache, t0 + 2000 + kPoolStatusMaxAgeUs));
    store_pool_status(cache, std::nullopt, t0 + 1100000);  // no answer: down
    CHECK_FALSE(cached_pool_status(cache));
    // A child that died mid-query holds the refresh only until its timeout;
    // a forged far-future claim does not hold it at all.
    const int64_t t1 = t0 + 5000000;
    REQUIRE(claim_pool_status_refresh(cache, t1));
    CHECK_FALSE(claim_pool_status_refresh(cache, t1 + kPoolStatusTimeoutUs - 1));
    CHECK(claim_pool_status_refresh(cache, t1 + kPoolStatusTimeoutUs + 1));
    cache.refreshing_until_us.store(INT64_MAX);
    CHECK(claim_pool_status_refresh(cache, t1 + 3 * kPoolStatusTimeoutUs));
    // Forged answer times: one in the future, or the most negative, count
    // as old (no overflow, no refresh stopped for good).
    cache.refreshing_until_us.store(0);
    cache.taken_at_us.store(INT64_MAX);
    CHECK(claim_pool_status_refresh(cache, t1 + 4 * kPoolStatusTimeoutUs));
    cache.refreshing_until_us.store(0);
    cache.taken_at_us.store(INT64_MIN);
    CHECK(claim_pool_status_refresh(cache, t1 + 5 * kPoolStatusTimeoutUs));
}
