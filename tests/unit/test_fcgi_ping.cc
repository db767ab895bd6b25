// FastCGI ping: request bytes and reply parsing.
#include <catch2/catch.hpp>

#include <utility>
#include <vector>

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

// The ping the supervisor sent before requests could carry more, byte for
// byte: health checks and readiness must not change with warm-up.
TEST_CASE("the ping's bytes are what they always were", "[fcgi]") {
    const char* golden =
        "010100010008000000010000000000000104000100c404001107474154455741595f494e544552464143"
        "454347492f312e310e03524551554553545f4d4554484f444745540b055343524950545f4e414d452f70"
        "696e670f055343524950545f46494c454e414d452f70696e670b05524551554553545f5552492f70696e"
        "670c0051554552595f535452494e470f085345525645525f50524f544f434f4c485454502f312e310f0f"
        "5345525645525f534f4654574152456d6f645f66706d5f7265706c6963610b0952454d4f54455f414444"
        "523132372e302e302e310000000001040001000000000105000100000000";
    std::string hex;
    for (unsigned char c : fcgi_ping_request("/ping")) {
        const char* digits = "0123456789abcdef";
        hex += digits[c >> 4];
        hex += digits[c & 15];
    }
    CHECK(hex == golden);
    FcgiRequest get;
    get.path = "/ping";
    CHECK(fcgi_request(get) == fcgi_ping_request("/ping"));
}

namespace {
// The records of an encoded request: (type, content), padding dropped.
std::vector<std::pair<int, std::string>> records_of(const std::string& bytes) {
    std::vector<std::pair<int, std::string>> out;
    for (size_t pos = 0; pos + 8 <= bytes.size();) {
        size_t length = (static_cast<unsigned char>(bytes[pos + 4]) << 8) |
                        static_cast<unsigned char>(bytes[pos + 5]);
        size_t padding = static_cast<unsigned char>(bytes[pos + 6]);
        out.emplace_back(static_cast<unsigned char>(bytes[pos + 1]), bytes.substr(pos + 8, length));
        pos += 8 + length + padding;
    }
    return out;
}
}  // namespace

TEST_CASE("a POST carries its query, its length and its body", "[fcgi]") {
    FcgiRequest post;
    post.method = "POST";
    post.path = "/usr/share/fpm-replica/warmup.php";
    post.query = "action=compile&deadline_ms=900";
    post.content_type = "text/plain";
    post.body = "/srv/a.php\n/srv/b.php\n";
    std::string bytes = fcgi_request(post);
    REQUIRE(bytes.size() % 8 == 0);
    auto recs = records_of(bytes);
    REQUIRE(recs.size() == 5);  // BEGIN, PARAMS, PARAMS end, STDIN, STDIN end
    const std::string& params = recs[1].second;
    CHECK(params.find("REQUEST_METHODPOST") != std::string::npos);
    CHECK(params.find("QUERY_STRINGaction=compile&deadline_ms=900") != std::string::npos);
    CHECK(params.find("REQUEST_URI/usr/share/fpm-replica/warmup.php?action=compile") != std::string::npos);
    CHECK(params.find("CONTENT_LENGTH22") != std::string::npos);
    CHECK(params.find("CONTENT_TYPEtext/plain") != std::string::npos);
    CHECK(recs[2] == std::make_pair(4, std::string()));
    CHECK(recs[3] == std::make_pair(5, post.body));
    CHECK(recs[4] == std::make_pair(5, std::string()));

    // A GET with a query and no body has no CONTENT_LENGTH.
    FcgiRequest list;
    list.path = "/w.php";
    list.query = "action=list";
    std::string l = fcgi_request(list);
    CHECK(l.find("QUERY_STRINGaction=list") != std::string::npos);
    CHECK(l.find("CONTENT_LENGTH") == std::string::npos);
    // An empty POST still says its length is 0.
    FcgiRequest empty_post;
    empty_post.method = "POST";
    empty_post.path = "/w.php";
    CHECK(fcgi_request(empty_post).find(std::string("\x0e\x01" "CONTENT_LENGTH0", 17)) != std::string::npos);
}

TEST_CASE("long bodies and parameters are split into records FastCGI can carry", "[fcgi]") {
    FcgiRequest post;
    post.method = "POST";
    post.path = "/w.php";
    post.query = std::string(70000, 'q');
    post.body = std::string(200000, 'b');
    std::string bytes = fcgi_request(post);
    std::string params, body;
    size_t empty_stdin = 0;
    for (const auto& [type, content] : records_of(bytes)) {
        CHECK(content.size() <= 65535);
        if (type == 4) params += content;
        if (type == 5) {
            body += content;
            if (content.empty()) ++empty_stdin;
        }
    }
    CHECK(body == post.body);
    CHECK(empty_stdin == 1);
    CHECK(params.find("QUERY_STRING") != std::string::npos);
    CHECK(params.find(post.query) != std::string::npos);
}

TEST_CASE("the reply read piece by piece equals the whole parse", "[fcgi]") {
    std::string out = record(6, "Status: 409 Conflict\r\nContent-type: text/plain\r\n\r\nopcache is off\n") +
                      record(7, "a warning") + record(6, "more\n") + record(3, std::string(8, '\0')) +
                      "trailing bytes after the end";
    FcgiReply whole = parse_fcgi_reply(out);
    REQUIRE(whole.status == FcgiReply::Status::Complete);
    CHECK(whole.http_status == 409);
    CHECK(fcgi_output_body(whole.output) == "opcache is off\nmore\n");
    for (size_t piece = 1; piece < 40; ++piece) {
        FcgiReplyReader reader;
        for (size_t at = 0; at < out.size(); at += piece) {
            reader.feed(std::string_view(out).substr(at, piece));
        }
        CHECK(reader.status() == FcgiReply::Status::Complete);
        CHECK(reader.output() == whole.output);
    }
    // A verdict stays: a malformed record then a good one.
    FcgiReplyReader bad;
    CHECK(bad.feed("HTTP/1.1 200 OK\r\n") == FcgiReply::Status::Malformed);
    CHECK(bad.feed(record(3, std::string(8, '\0'))) == FcgiReply::Status::Malformed);
    // Headers that never end: no body; the blank line may be bare newlines.
    CHECK(fcgi_output_body("Content-type: text/plain\r\n").empty());
    CHECK(fcgi_output_body("Content-type: text/plain\n\nx") == "x");
    CHECK(fcgi_output_status("Status: 404 Not Found\r\n\r\n") == 404);
}
