// One FastCGI ping in flight over a socket, advanced without blocking: the
// supervisor keeps one per replica member (readiness, health checks) and
// waits for all of them at once, so a hung replica holds nobody up. The
// same client carries the warm-up's plain HTTP requests through httpd
// (core/warmup_urls), whose answer ends where httpd closes the connection.
// Plain POSIX sockets, no httpd types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "config_parse.h"
#include "fcgi_ping.h"

namespace fpmr {

class FcgiPingClient {
public:
    enum class Result { Pending, Answered, Failed };

    // A ping's answer is a few headers; a replica that sends more without
    // ending its reply is broken or hostile, and each read re-parses what
    // came so far, so the supervisor's memory and time stay bounded.
    static constexpr size_t kMaxReplyBytes = 64 * 1024;
    // A warm-up's answer is a list of script paths: up to kMaxWarmupScripts
    // of them (warmup.h) at their usual length fit in this.
    static constexpr size_t kMaxWarmupReplyBytes = 4 * 1024 * 1024;

    // Starts connecting to `socket` and sending a GET of `path`; it must be
    // answered by `deadline_us` (on the caller's clock).
    FcgiPingClient(const SocketSpec& socket, const std::string& path, int64_t deadline_us);
    // The same for any request (the warm-up's list and compile requests),
    // failing once more than `max_reply_bytes` arrived without an end.
    FcgiPingClient(const SocketSpec& socket, const FcgiRequest& request, int64_t deadline_us,
                   size_t max_reply_bytes = kMaxReplyBytes);
    // Sends `http_request` (whole HTTP/1.1 request bytes asking for
    // "Connection: close") and reads the answer up to the end of the
    // connection; Answered when it began with a status line. The body is
    // not kept.
    struct Http {};
    FcgiPingClient(Http, const SocketSpec& socket, std::string http_request, int64_t deadline_us);
    ~FcgiPingClient();
    FcgiPingClient(const FcgiPingClient&) = delete;
    FcgiPingClient& operator=(const FcgiPingClient&) = delete;

    // Does whatever the socket allows now, waiting at most `wait_ms` for it
    // (0: not at all). Answered: a complete FastCGI answer arrived; Failed:
    // refused, closed, malformed, or the deadline passed.
    Result advance(int64_t now_us, int wait_ms = 0);

    // The HTTP status of an Answered reply (its "Status:" header, 200
    // without one); 0 before. A health check passes only on 2xx and 3xx.
    int http_status() const { return http_status_; }
    bool answered_ok() const {
        return result_ == Result::Answered && http_status_ >= 200 && http_status_ < 400;
    }

    // The body of an Answered reply (what follows its CGI headers); empty
    // before. Up to the limit given to the constructor.
    const std::string& body() const { return body_; }

    // For poll(2) across several pings: the descriptor (-1 once finished)
    // and the events it waits for.
    int fd() const { return fd_; }
    short events() const;

private:
    void connect_to(const SocketSpec& socket);
    Result receive_http();
    Result finish(Result r);
    Result receive();

    int fd_ = -1;
    bool connecting_ = false;
    std::string request_;
    size_t sent_ = 0;
    FcgiReplyReader reader_;
    size_t received_ = 0;  // bytes read so far, framing included
    size_t max_reply_bytes_ = kMaxReplyBytes;
    int64_t deadline_us_ = 0;
    bool http_ = false;
    std::string http_head_;  // the first bytes of an HTTP answer, for its status line
    Result result_ = Result::Pending;
    int http_status_ = 0;
    std::string body_;
};

}  // namespace fpmr
