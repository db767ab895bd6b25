// FastCGI ping: request bytes and reply parsing.
#include <catch2/catch.hpp>

#include "fcgi_ping.h"

using namespace fpmr;

namespace {
std::string record(unsigned char type, const std::string& content) {
    std::string r = {1, static_cast<char>(type), 0, 1, static_cast<char>(content.size() >> 8),
                     static_cast<char>(content.size() & 0xff), 0, 0};
    return r + content;
}
}  // namespace

TEST_CASE("the ping request is well-formed FastCGI", "[fcgi]") {
    std::string req = fcgi_ping_request("/ping");
    REQUIRE(req.size() % 8 == 0);
    CHECK(static_cast<unsigned char>(req[0]) == 1);  // version
    CHECK(static_cast<unsigned char>(req[1]) == 1);  // BEGIN_REQUEST
    CHECK(req.find("SCRIPT_FILENAME/ping") != std::string::npos);
    CHECK(req.find("REQUEST_METHODGET") != std::string::npos);
    // Ends with an empty PARAMS and an empty STDIN record.
    CHECK(req.substr(req.size() - 16) == std::string("\x01\x04\x00\x01\x00\x00\x00\x00"
                                                     "\x01\x05\x00\x01\x00\x00\x00\x00", 16));
}

TEST_CASE("ping replies: complete, incomplete, status, malformed", "[fcgi]") {
    std::string out = record(6, "Content-type: text/plain\r\n\r\npong") +
                      record(3, std::string(8, '\0'));
    FcgiReply r = parse_fcgi_reply(out);
    CHECK(r.status == FcgiReply::Status::Complete);
    CHECK(r.http_status == 200);
    CHECK(r.output.find("pong") != std::string::npos);

    CHECK(parse_fcgi_reply(out.substr(0, out.size() - 3)).status == FcgiReply::Status::Incomplete);
    CHECK(parse_fcgi_reply("").status == FcgiReply::Status::Incomplete);

    FcgiReply nf = parse_fcgi_reply(record(6, "Status: 404 Not Found\r\n\r\nFile not found.") +
                                    record(7, "Primary script unknown") + record(3, std::string(8, '\0')));
    CHECK(nf.status == FcgiReply::Status::Complete);
    CHECK(nf.http_status == 404);

    CHECK(parse_fcgi_reply("HTTP/1.1 200 OK\r\n\r\n").status == FcgiReply::Status::Malformed);
}

// Found by fuzz/fuzz_fcgi_reply.cc: the status code was read with atoi, so a
// broken replica's "Status: 4294967496" wrapped to 200 and passed a check.
TEST_CASE("a Status header counts only as a three-digit code", "[fcgi]") {
    auto status_of = [](const std::string& header) {
        return parse_fcgi_reply(record(6, header + "\r\n\r\n") + record(3, std::string(8, '\0')))
            .http_status;
    };
    CHECK(status_of("Status: 503 Service Unavailable") == 503);
    CHECK(status_of("Status:\t204") == 204);
    CHECK(status_of("status: 302 Found") == 302);
    CHECK(status_of("Status: 4294967496 OK") == 0);
    CHECK(status_of("Status: 2000") == 0);
    CHECK(status_of("Status: 002") == 0);
    CHECK(status_of("Status: 20") == 0);
    CHECK(status_of("Status: -200") == 0);
    CHECK(status_of("Status: OK") == 0);
    CHECK(status_of("Content-Type: text/plain") == 200);  // no Status header
}
