// The blocking FastCGI client of request threads (the probe lane, the pool
// status of a scrape): one core FcgiPingClient, waited for until it is
// answered or its time is up.
// The supervisor keeps its pings in flight without waiting (glue_supervisor.cc).
#include <string>

#include "fcgi_ping_client.h"
#include "glue.h"

namespace fpmr::glue {

FcgiPingClient::Result wait_for_answer(FcgiPingClient& client, int64_t deadline_us) {
    for (;;) {
        int64_t now = now_us();
        FcgiPingClient::Result result = client.advance(now, static_cast<int>((deadline_us - now) / 1000) + 1);
        if (result != FcgiPingClient::Result::Pending) return result;
    }
}

bool answers_ping(const SocketSpec& spec, int timeout_ms, const std::string& path) {
    int64_t deadline = now_us() + timeout_ms * 1000LL;
    FcgiPingClient ping(spec, path, deadline);
    return wait_for_answer(ping, deadline) == FcgiPingClient::Result::Answered;
}

}  // namespace fpmr::glue
