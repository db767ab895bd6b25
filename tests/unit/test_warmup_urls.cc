// The warm-up's URL requests: the steering header's format, the token's
// life in the trusted block, the request bytes and the answer's status.
#include <catch2/catch.hpp>

#include "test_blocks.h"
#include "warmup_urls.h"

using namespace fpmr;

TEST_CASE("the warm-up header names a slot and a 128-bit token, and nothing else", "[warmup]") {
    WarmupToken token{0x0123456789abcdefULL, 0xfedcba9876543210ULL};
    std::string value = warmup_header_value(7, token);
    CHECK(value == "7.0123456789abcdeffedcba9876543210");
    auto back = parse_warmup_header(value, 8);
    REQUIRE(back);
    CHECK(back->slot == 7);
    CHECK(back->token.high == token.high);
    CHECK(back->token.low == token.low);

    CHECK_FALSE(parse_warmup_header(value, 7));  // a slot the blocks do not have
    CHECK(parse_warmup_header(warmup_header_value(0, token), 1));
    for (const char* bad : {"", "7", "7.", ".0123456789abcdeffedcba9876543210",
                            "-1.0123456789abcdeffedcba9876543210",
                            "7.0123456789ABCDEFfedcba9876543210",   // upper case
                            "7.0123456789abcdeffedcba987654321",    // 31 digits
                            "7.0123456789abcdeffedcba98765432100",  // 33 digits
                            "7.00000000000000000000000000000000",   // no token
                            "7 .0123456789abcdeffedcba9876543210",
                            "1234567.0123456789abcdeffedcba9876543210",
                            "07.0123456789abcdeffedcba9876543210",  // one spelling per slot
                            "+7.0123456789abcdeffedcba9876543210"}) {
        CHECK_FALSE(parse_warmup_header(bad, 1 << 20));
    }
}

TEST_CASE("a token admits requests only while the supervisor publishes it", "[warmup]") {
    testing::TestBlocks blocks;
    SharedState state = blocks.format("nonce");
    TrustedSlot& slot = state.trusted_rw(0);
    WarmupToken token{1, 2};
    CHECK_FALSE(warmup_token_admits(slot, token));  // a fresh slot holds none
    publish_warmup_token(slot, token);
    CHECK(warmup_token_admits(slot, token));
    CHECK_FALSE(warmup_token_admits(slot, WarmupToken{1, 3}));
    CHECK_FALSE(warmup_token_admits(slot, WarmupToken{0, 2}));
    CHECK_FALSE(warmup_token_admits(state.trusted(1), token));  // another member's slot
    withdraw_warmup_token(slot);
    CHECK_FALSE(warmup_token_admits(slot, token));
    CHECK_FALSE(warmup_token_admits(slot, WarmupToken{}));  // zero is never a token
}

TEST_CASE("the warm-up's HTTP request and the status of its answer", "[warmup]") {
    CHECK(warmup_url_request("app.test:8080", "/cache?x=1", "3.00000000000000010000000000000002") ==
          "GET /cache?x=1 HTTP/1.1\r\nHost: app.test:8080\r\nUser-Agent: mod_fpm_replica warm-up\r\n"
          "FPM-Replica-Warmup: 3.00000000000000010000000000000002\r\nConnection: close\r\n\r\n");
    CHECK(parse_http_status("HTTP/1.1 200 OK\r\n") == 200);
    CHECK(parse_http_status("HTTP/1.0 503 Service Unavailable\r\n\r\n") == 503);
    CHECK(parse_http_status("HTTP/1.1 302\r\n") == 302);
    CHECK(parse_http_status("HTTP/1.1 200") == 0);  // shorter than a status line and its end
    CHECK(parse_http_status("HTTP/1.1 2000 OK\r\n") == 0);
    CHECK(parse_http_status("HTTP/2 200 OK\r\n") == 0);
    CHECK(parse_http_status("HTTP/1.1 099 Low\r\n") == 0);
    CHECK(parse_http_status("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00\x00") == 0);  // TLS
    CHECK(parse_http_status("") == 0);
}
