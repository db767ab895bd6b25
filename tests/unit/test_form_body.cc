// The status handler's url-encoded POST body: decoding, what wins on a
// duplicate name, and every refusal.
#include <catch2/catch.hpp>

#include "form_body.h"

using namespace fpmr;

TEST_CASE("a form body decodes percent escapes and '+' in names and values", "[form]") {
    auto fields = parse_form_body("action=prepare&release=%2Fsrv%2Fapp%2Freleases%2Fr+1&na%6De=x%41y");
    REQUIRE(fields);
    CHECK(fields->size() == 3);
    CHECK(fields->at("action") == "prepare");
    CHECK(fields->at("release") == "/srv/app/releases/r 1");
    CHECK(fields->at("name") == "xAy");
}

TEST_CASE("a form body keeps the first value of a name given twice", "[form]") {
    auto fields = parse_form_body("action=drain&replica=a&action=restart&replica=b");
    REQUIRE(fields);
    CHECK(fields->at("action") == "drain");
    CHECK(fields->at("replica") == "a");
}

TEST_CASE("a form body skips empty segments and reads a bare name as empty", "[form]") {
    auto fields = parse_form_body("&&action=drain&&flag&replica=&");
    REQUIRE(fields);
    CHECK(fields->size() == 3);
    CHECK(fields->at("action") == "drain");
    CHECK(fields->at("flag").empty());
    CHECK(fields->at("replica").empty());
    auto empty = parse_form_body("");
    REQUIRE(empty);
    CHECK(empty->empty());
}

TEST_CASE("a value may contain '=' after the first one", "[form]") {
    auto fields = parse_form_body("release=/a=b");
    REQUIRE(fields);
    CHECK(fields->at("release") == "/a=b");
}

TEST_CASE("a form body with a bad percent escape is refused", "[form]") {
    CHECK_FALSE(parse_form_body("action=dr%zzain"));
    CHECK_FALSE(parse_form_body("action=drain%"));
    CHECK_FALSE(parse_form_body("action=drain%4"));
    CHECK_FALSE(parse_form_body("act%g1ion=drain"));
    CHECK_FALSE(parse_form_body("%=x"));
    CHECK(parse_form_body("action=drain%41")->at("action") == "drainA");
}

TEST_CASE("a form body with a decoded NUL or an empty name is refused", "[form]") {
    CHECK_FALSE(parse_form_body("replica=a%00b"));
    CHECK_FALSE(parse_form_body("a%00=b"));
    CHECK_FALSE(parse_form_body("=drain"));
    CHECK_FALSE(parse_form_body("action=drain&=x"));
}

TEST_CASE("a form body's sizes are bounded after decoding", "[form]") {
    FormBodyLimits limits;
    limits.max_pairs = 3;
    limits.max_key_length = 4;
    limits.max_value_length = 5;
    CHECK(parse_form_body("a=1&b=2&c=3", limits));
    CHECK_FALSE(parse_form_body("a=1&b=2&c=3&d=4", limits));
    CHECK(parse_form_body("a=1&b=2&c=3&&&", limits));  // empty segments are no pairs
    CHECK(parse_form_body("abcd=12345", limits));
    CHECK_FALSE(parse_form_body("abcde=1", limits));
    CHECK_FALSE(parse_form_body("a=123456", limits));
    // Three characters of input, one byte decoded: the decoded length counts.
    CHECK(parse_form_body("a=%41%42%43%44%45", limits)->at("a") == "ABCDE");
    CHECK_FALSE(parse_form_body("a=%41%42%43%44%45%46", limits));
}

TEST_CASE("the default limits admit a release path of 512 bytes, not 513", "[form]") {
    std::string path = "/" + std::string(511, 'r');
    CHECK(parse_form_body("action=prepare&release=" + path)->at("release") == path);
    CHECK_FALSE(parse_form_body("action=prepare&release=" + path + "x"));
}
