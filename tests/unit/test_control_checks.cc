// The control endpoint's request checks: nonce comparison, origin, host.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <string>

#include "control_checks.h"

using namespace fpmr;

TEST_CASE("constant_time_equal answers like ==", "[control]") {
    CHECK(constant_time_equal("3f9c", "3f9c"));
    CHECK_FALSE(constant_time_equal("3f9c", "3f9d"));
    CHECK_FALSE(constant_time_equal("3f9c", "3f9"));
    CHECK_FALSE(constant_time_equal("3f9c", "3f9c0"));
    CHECK_FALSE(constant_time_equal("3f9c", ""));
    CHECK(constant_time_equal("", ""));
    // A guess padded with NULs must not pass for the secret's prefix.
    CHECK_FALSE(constant_time_equal(std::string("ab\0", 3), "ab"));
    CHECK_FALSE(constant_time_equal("ab", std::string("ab\0", 3)));
}

namespace {
// Fastest of several runs, so a busy machine only ever slows a run down.
double fastest_seconds(const std::string& secret, const std::string& guess) {
    double best = 1e9;
    for (int run = 0; run < 15; ++run) {
        auto t0 = std::chrono::steady_clock::now();
        bool same = constant_time_equal(secret, guess);
        auto t1 = std::chrono::steady_clock::now();
        REQUIRE_FALSE(same);
        best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
    }
    return best;
}
}  // namespace

TEST_CASE("constant_time_equal takes as long for a first-byte miss and a short guess as for "
          "a last-byte miss", "[control]") {
    // Over 4 MiB an early exit (memcmp, or == on the length) answers in
    // nanoseconds against milliseconds: a factor of thousands. Any ratio
    // under 4 means the whole secret was walked each time.
    const std::string secret(4 << 20, 'a');
    std::string last = secret;
    last.back() = 'b';
    std::string first = secret;
    first.front() = 'b';
    const std::string short_guess = "a";
    double t_last = fastest_seconds(secret, last);
    double t_first = fastest_seconds(secret, first);
    double t_short = fastest_seconds(secret, short_guess);
    INFO("last-byte miss " << t_last << " s, first-byte miss " << t_first << " s, short guess "
                           << t_short << " s");
    CHECK(t_first * 4 > t_last);
    CHECK(t_short * 4 > t_last);
}

TEST_CASE("origins are compared in one spelling", "[control]") {
    CHECK(normalized_origin("http://App.Test") == std::optional<std::string>("http://app.test"));
    CHECK(normalized_origin("http://app.test:80") == std::optional<std::string>("http://app.test"));
    CHECK(normalized_origin("https://app.test:443") == std::optional<std::string>("https://app.test"));
    CHECK(normalized_origin("https://app.test:80") == std::optional<std::string>("https://app.test:80"));
    CHECK(normalized_origin("HTTP://app.test.:8080") == std::optional<std::string>("http://app.test:8080"));
    CHECK(normalized_origin("http://[::1]:8080") == std::optional<std::string>("http://[::1]:8080"));
    CHECK(normalized_origin("http://127.0.0.1:08080") == std::optional<std::string>("http://127.0.0.1:8080"));
    CHECK_FALSE(normalized_origin("null"));
    CHECK_FALSE(normalized_origin("file://"));
    CHECK_FALSE(normalized_origin("ftp://app.test"));
    CHECK_FALSE(normalized_origin("http://app.test/"));
    CHECK_FALSE(normalized_origin("http://user@app.test"));
    CHECK_FALSE(normalized_origin("http://app.test:0"));
    CHECK_FALSE(normalized_origin("http://app.test:65536"));
    CHECK_FALSE(normalized_origin("http://app.test:80x"));
    CHECK_FALSE(normalized_origin("http://a:b:c"));
    CHECK_FALSE(normalized_origin("http://app.test http://evil.test"));
    CHECK_FALSE(normalized_origin("http://"));
    CHECK(origin_of_url("http://app.test:8080/fpm-replica-status?format=html#x") ==
          std::optional<std::string>("http://app.test:8080"));
    CHECK(origin_of_url("https://app.test?x") == std::optional<std::string>("https://app.test"));
    CHECK_FALSE(origin_of_url("/relative/path"));
    CHECK(own_origin("http", "App.Test:80") == std::optional<std::string>("http://app.test"));
    CHECK(own_origin("https", "app.test") == std::optional<std::string>("https://app.test"));
    CHECK_FALSE(own_origin("http", ""));
}

TEST_CASE("judge_origin: Origin first, Referer without it, nothing sent is allowed", "[control]") {
    auto own = own_origin("http", "127.0.0.1:8080");
    using V = OriginVerdict;
    CHECK(judge_origin(std::nullopt, std::nullopt, own) == V::NotSent);
    CHECK(judge_origin(std::string_view(""), std::string_view(""), own) == V::NotSent);
    CHECK(judge_origin(std::string_view("http://127.0.0.1:8080"), std::nullopt, own) == V::SameOrigin);
    CHECK(judge_origin(std::string_view("http://evil.test"), std::nullopt, own) == V::CrossOrigin);
    // Same host, another port or scheme: another origin.
    CHECK(judge_origin(std::string_view("http://127.0.0.1:8081"), std::nullopt, own) == V::CrossOrigin);
    CHECK(judge_origin(std::string_view("https://127.0.0.1:8080"), std::nullopt, own) == V::CrossOrigin);
    CHECK(judge_origin(std::string_view("null"), std::nullopt, own) == V::CrossOrigin);
    CHECK(judge_origin(std::string_view("garbage"), std::nullopt, own) == V::Unreadable);
    // Origin decides even when the Referer says otherwise.
    CHECK(judge_origin(std::string_view("http://evil.test"),
                       std::string_view("http://127.0.0.1:8080/fpm-replica-status"), own) ==
          V::CrossOrigin);
    CHECK(judge_origin(std::nullopt, std::string_view("http://127.0.0.1:8080/fpm-replica-status?format=html"),
                       own) == V::SameOrigin);
    CHECK(judge_origin(std::nullopt, std::string_view("http://evil.test/attack.html"), own) ==
          V::CrossOrigin);
    // Default ports on both sides.
    CHECK(judge_origin(std::string_view("http://app.test"), std::nullopt,
                       own_origin("http", "app.test:80")) == V::SameOrigin);
    CHECK(judge_origin(std::string_view("https://app.test:443"), std::nullopt,
                       own_origin("https", "app.test")) == V::SameOrigin);
    // A browser header without a Host to compare with: refused.
    CHECK(judge_origin(std::string_view("http://app.test"), std::nullopt, std::nullopt) ==
          V::Unreadable);
}

TEST_CASE("wildcard_match as ServerAlias does it", "[control]") {
    CHECK(wildcard_match("www.app.test", "*.app.test"));
    CHECK(wildcard_match("a.b.app.test", "*.app.test"));
    CHECK_FALSE(wildcard_match("app.test", "*.app.test"));
    CHECK_FALSE(wildcard_match("evilapp.test", "*.app.test"));
    CHECK(wildcard_match("web1.app.test", "web?.APP.test"));
    CHECK_FALSE(wildcard_match("web12.app.test", "web?.app.test"));
    CHECK(wildcard_match("anything", "*"));
    CHECK(wildcard_match("a-b-c", "a*b*c"));
    CHECK_FALSE(wildcard_match("a-b-d", "a*b*c"));
}

TEST_CASE("host_names_vhost: names, aliases, the local address; never a rebound name",
          "[control]") {
    VhostNames n;
    n.server_name = "app.test";
    n.aliases = {"www.app.test"};
    n.wild_aliases = {"*.cdn.app.test"};
    n.local_ip = "127.0.0.1";
    CHECK(host_names_vhost("app.test", n));
    CHECK(host_names_vhost("APP.test", n));
    CHECK(host_names_vhost("www.app.test", n));
    CHECK(host_names_vhost("x.cdn.app.test", n));
    CHECK(host_names_vhost("127.0.0.1", n));
    CHECK(host_names_vhost("localhost", n));
    CHECK_FALSE(host_names_vhost("evil.test", n));         // DNS rebinding
    CHECK_FALSE(host_names_vhost("app.test.evil.test", n));
    CHECK_FALSE(host_names_vhost("127.0.0.2", n));         // another address than the connection's
    CHECK_FALSE(host_names_vhost("", n));
    n.local_ip = "10.0.0.5";
    CHECK(host_names_vhost("10.0.0.5", n));
    CHECK_FALSE(host_names_vhost("localhost", n));         // not a loopback connection
    n.local_ip = "::1";
    CHECK(host_names_vhost("::1", n));
    CHECK(host_names_vhost("0:0:0:0:0:0:0:1", n));
    CHECK(host_names_vhost("localhost", n));
    n.local_ip = "::ffff:127.0.0.1";                       // a v4 client on a dual-stack socket
    CHECK(host_names_vhost("127.0.0.1", n));
}
