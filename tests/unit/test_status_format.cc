// Which representation a status GET gets: the query's format= first, then
// the Accept header, JSON whenever in doubt.
#include <catch2/catch.hpp>

#include "status_format.h"

using namespace fpmr;

namespace {
constexpr const char* kChromiumAccept =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,"
    "*/*;q=0.8,application/signed-exchange;v=b3;q=0.7";
constexpr const char* kFirefoxAccept =
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
}  // namespace

TEST_CASE("format= in the query wins over Accept", "[status-format]") {
    CHECK(choose_status_format("format=prometheus", std::nullopt) == StatusFormat::Prometheus);
    CHECK(choose_status_format("x=1&format=html", std::nullopt) == StatusFormat::Html);
    CHECK(choose_status_format("format=html", "application/json") == StatusFormat::Html);
    CHECK(choose_status_format("format=json", kChromiumAccept) == StatusFormat::Json);
    CHECK(choose_status_format("format=prometheus", kChromiumAccept) == StatusFormat::Prometheus);
    // Only the exact segment counts, as before the HTML page existed.
    CHECK(choose_status_format("format=prometheusx", std::nullopt) == StatusFormat::Json);
    CHECK(choose_status_format("xformat=html", std::nullopt) == StatusFormat::Json);
    // An unknown format leaves the choice to Accept.
    CHECK(choose_status_format("format=xml", kFirefoxAccept) == StatusFormat::Html);
}

TEST_CASE("a browser's Accept gets HTML; scripts and the CLI keep JSON", "[status-format]") {
    CHECK(choose_status_format(std::nullopt, kChromiumAccept) == StatusFormat::Html);
    CHECK(choose_status_format(std::nullopt, kFirefoxAccept) == StatusFormat::Html);
    CHECK(choose_status_format(std::nullopt, "text/html") == StatusFormat::Html);
    CHECK(choose_status_format(std::nullopt, "text/*") == StatusFormat::Html);
    CHECK(choose_status_format(std::nullopt, std::nullopt) == StatusFormat::Json);
    CHECK(choose_status_format(std::nullopt, "") == StatusFormat::Json);
    CHECK(choose_status_format(std::nullopt, "*/*") == StatusFormat::Json);
    CHECK(choose_status_format(std::nullopt, "application/json") == StatusFormat::Json);
    CHECK(choose_status_format(std::nullopt, "application/json, text/html") == StatusFormat::Json);  // a tie
    CHECK(choose_status_format(std::nullopt, "text/html;q=0.5, application/json") == StatusFormat::Json);
    CHECK(choose_status_format(std::nullopt, "text/html, application/json;q=0.9") == StatusFormat::Html);
    CHECK(choose_status_format(std::nullopt, "text/html;q=0, */*") == StatusFormat::Json);
}

TEST_CASE("accept_weight takes the most specific range and ignores malformed ones", "[status-format]") {
    CHECK(accept_weight("text/*;q=0.3, text/html;q=0.7, */*;q=0.5", "text/html") == Approx(0.7));
    CHECK(accept_weight("text/*;q=0.3, */*;q=0.5", "text/html") == Approx(0.3));
    CHECK(accept_weight("*/*;q=0.5", "application/json") == Approx(0.5));
    CHECK(accept_weight("TEXT/HTML ; Q=0.4", "text/html") == Approx(0.4));
    CHECK(accept_weight("image/png", "text/html") == 0);
    CHECK(accept_weight("   ", "text/html") == 1);
    // Malformed weights drop their range instead of counting as 1.
    CHECK(accept_weight("text/html;q=2", "text/html") == 0);
    CHECK(accept_weight("text/html;q=abc", "text/html") == 0);
    CHECK(accept_weight("text/html;q=1.5", "text/html") == 0);
    CHECK(accept_weight("text/html;q=0.123", "text/html") == Approx(0.123));
    CHECK(accept_weight("texthtml, ,,;", "text/html") == 0);
}
