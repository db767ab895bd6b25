// A FastCGI ping: the bytes of one small GET request and the parsing of the
// answer, for the supervisor's readiness test (and, later, health checks).
// Requests of clients are never spoken here: mod_proxy_fcgi carries those.
#pragma once

#include <string>

namespace fpmr {

// BEGIN_REQUEST (responder, no keep-alive), PARAMS for GET `path`, the empty
// PARAMS and STDIN records that end them.
std::string fcgi_ping_request(const std::string& path);

struct FcgiReply {
    enum class Status { Incomplete, Complete, Malformed } status = Status::Incomplete;
    std::string output;    // the STDOUT stream: CGI headers and body
    int http_status = 0;   // from a "Status:" header, 200 when there is none
};

// Parses everything received so far; Complete once END_REQUEST arrived.
FcgiReply parse_fcgi_reply(const std::string& bytes);

}  // namespace fpmr
