// The supervisor's own FastCGI requests to a replica: the bytes of one small
// request and the parsing of the answer, for the readiness test, the health
// checks (a GET of the ping path) and the warm-up (a GET or POST of the
// warm-up script). Requests of clients are never spoken here:
// mod_proxy_fcgi carries those.
#pragma once

#include <string>
#include <string_view>

namespace fpmr {

// One request. The defaults (a GET without query and body) are a ping.
struct FcgiRequest {
    std::string method = "GET";
    std::string path;   // SCRIPT_FILENAME, SCRIPT_NAME and REQUEST_URI
    std::string query;  // QUERY_STRING, without the '?'
    // STDIN. With a body, or with a method other than GET and HEAD, the
    // request carries CONTENT_LENGTH and CONTENT_TYPE.
    std::string body;
    std::string content_type = "application/octet-stream";
};

// BEGIN_REQUEST (responder, no keep-alive), the PARAMS of `request` (in
// records of at most 64 KiB), the empty PARAMS record, the body in STDIN
// records and the empty STDIN record that ends it.
std::string fcgi_request(const FcgiRequest& request);
// The ping: fcgi_request of a GET of `path`, byte for byte what the
// supervisor always sent.
std::string fcgi_ping_request(const std::string& path);

struct FcgiReply {
    enum class Status { Incomplete, Complete, Malformed } status = Status::Incomplete;
    std::string output;    // the STDOUT stream: CGI headers and body
    int http_status = 0;   // from a "Status:" header, 200 when there is none; 0 when Malformed
};

// Parses everything received so far; Complete once END_REQUEST arrived.
FcgiReply parse_fcgi_reply(const std::string& bytes);

// The same parse, fed piece by piece as the bytes arrive: each record is
// looked at once, so a large answer (a warm-up's list of scripts) costs
// time in proportion to its size, not to its size squared. At most one
// incomplete record (64 KiB and padding) is held besides the output.
class FcgiReplyReader {
public:
    // Takes the next bytes; once Complete or Malformed, later bytes are
    // ignored (more bytes never undo a verdict).
    FcgiReply::Status feed(std::string_view bytes);
    FcgiReply::Status status() const { return status_; }
    const std::string& output() const { return output_; }
    std::string take_output() { return std::move(output_); }

private:
    FcgiReply::Status status_ = FcgiReply::Status::Incomplete;
    std::string pending_;  // the start of a record not complete yet
    std::string output_;
};

// The HTTP status of a STDOUT stream's CGI headers: the "Status:" header's
// three-digit code, 200 without one, 0 for one that is no such code.
int fcgi_output_status(const std::string& output);
// What follows the CGI headers (after the first empty line); empty when
// the headers never end.
std::string_view fcgi_output_body(const std::string& output);

}  // namespace fpmr
