// A FastCGI answer from a replica socket that may be hostile or broken, as
// parse_fcgi_reply sees it: the supervisor parses everything received so
// far after every read, so each prefix of an answer is parsed too.
#include <string>

#include "fcgi_ping.h"
#include "fuzz_input.h"

using namespace fpmr;
using fpmr::fuzz::violated;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string bytes(fpmr::fuzz::as_text(data, size));
    const FcgiReply whole = parse_fcgi_reply(bytes);
    if (whole.output.size() > bytes.size()) violated("more output than input");
    // A health check passes on 2xx/3xx: the status must be an HTTP status
    // code the replica actually sent, never one made up by an overflow.
    if (whole.http_status != 0 && (whole.http_status < 100 || whole.http_status > 999)) {
        violated("an http_status that is no three-digit code");
    }
    // More bytes never undo a verdict: a prefix that is complete or
    // malformed stays so (the client stops reading at the first verdict).
    for (size_t cut = 0; cut < bytes.size(); cut += 1 + cut / 4) {
        const FcgiReply prefix = parse_fcgi_reply(bytes.substr(0, cut));
        if (prefix.status == FcgiReply::Status::Complete &&
            (whole.status != FcgiReply::Status::Complete || whole.output != prefix.output ||
             whole.http_status != prefix.http_status)) {
            violated("a complete prefix changed its answer");
        }
        if (prefix.status == FcgiReply::Status::Malformed &&
            whole.status != FcgiReply::Status::Malformed) {
            violated("a malformed prefix became well-formed");
        }
    }
    // The client feeds the reader as the bytes arrive: in any pieces, it
    // must reach the whole parse's verdict and output.
    for (size_t piece : {size_t{1}, size_t{7}, size_t{4096}}) {
        FcgiReplyReader reader;
        for (size_t at = 0; at < bytes.size(); at += piece) {
            reader.feed(std::string_view(bytes).substr(at, piece));
        }
        if (reader.status() != whole.status || reader.output() != whole.output) {
            violated("the reader fed in pieces differs from the whole parse");
        }
    }
    (void)fcgi_output_body(whole.output);
    return 0;
}
