#include "fcgi_ping_client.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "fcgi_ping.h"
#include "warmup_urls.h"

namespace fpmr {

FcgiPingClient::FcgiPingClient(const SocketSpec& socket, const std::string& path,
                               int64_t deadline_us)
    : request_(fcgi_ping_request(path)), max_reply_bytes_(kMaxReplyBytes), deadline_us_(deadline_us) {
    connect_to(socket);
}

FcgiPingClient::FcgiPingClient(const SocketSpec& socket, const FcgiRequest& request,
                               int64_t deadline_us, size_t max_reply_bytes)
    : request_(fcgi_request(request)), max_reply_bytes_(max_reply_bytes), deadline_us_(deadline_us) {
    connect_to(socket);
}

FcgiPingClient::FcgiPingClient(Http, const SocketSpec& socket, std::string http_request,
                               int64_t deadline_us)
    : request_(std::move(http_request)), deadline_us_(deadline_us), http_(true) {
    connect_to(socket);
}

void FcgiPingClient::connect_to(const SocketSpec& socket) {
    int rc = -1;
    if (socket.kind == SocketSpec::Kind::Unix) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd_ < 0) {
            finish(Result::Failed);
            return;
        }
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, socket.path.c_str(), sizeof addr.sun_path - 1);
        rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        // A unix socket connects at once or not at all (EAGAIN: its listen
        // queue is full, which for a status pool means it does not keep up).
        if (rc != 0) {
            finish(Result::Failed);
            return;
        }
    } else {
        addrinfo hints{}, *res = nullptr;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV;
        if (::getaddrinfo(socket.host.c_str(), std::to_string(socket.port).c_str(), &hints,
                          &res) != 0) {
            finish(Result::Failed);
            return;
        }
        fd_ = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        rc = fd_ < 0 ? -1 : ::connect(fd_, res->ai_addr, res->ai_addrlen);
        ::freeaddrinfo(res);
        if (rc != 0 && !(fd_ >= 0 && errno == EINPROGRESS)) {
            finish(Result::Failed);
            return;
        }
        connecting_ = rc != 0;
    }
}

FcgiPingClient::~FcgiPingClient() {
    if (fd_ >= 0) ::close(fd_);
}

FcgiPingClient::Result FcgiPingClient::finish(Result r) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    result_ = r;
    return r;
}

short FcgiPingClient::events() const {
    if (result_ != Result::Pending) return 0;
    return connecting_ || sent_ < request_.size() ? POLLOUT : POLLIN;
}

FcgiPingClient::Result FcgiPingClient::advance(int64_t now_us, int wait_ms) {
    if (result_ != Result::Pending) return result_;
    if (now_us >= deadline_us_) return finish(Result::Failed);
    int64_t left_ms = (deadline_us_ - now_us) / 1000 + 1;
    pollfd p{fd_, events(), 0};
    int ready = ::poll(&p, 1, static_cast<int>(wait_ms < left_ms ? wait_ms : left_ms));
    if (ready < 0 && errno != EINTR) return finish(Result::Failed);
    if (ready <= 0) return Result::Pending;
    if (p.revents & (POLLERR | POLLNVAL)) return finish(Result::Failed);
    if (connecting_) {
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            return finish(Result::Failed);
        }
        connecting_ = false;
        return Result::Pending;
    }
    if (sent_ < request_.size()) {
        // As much as the socket takes now: a compile request's body is
        // megabytes, and the supervisor advances each client once a turn.
        while (sent_ < request_.size()) {
            ssize_t n = ::send(fd_, request_.data() + sent_, request_.size() - sent_, MSG_NOSIGNAL);
            if (n < 0 && errno == EAGAIN) break;
            if (n <= 0) return finish(Result::Failed);
            sent_ += static_cast<size_t>(n);
        }
        return Result::Pending;
    }
    return http_ ? receive_http() : receive();
}

// An HTTP answer through httpd: its status line, then whatever follows
// (discarded) until httpd closes the connection; in one turn up to a
// bounded amount, and an answer longer than a page should be is taken as
// answered once its status line is in.
FcgiPingClient::Result FcgiPingClient::receive_http() {
    constexpr size_t kHeadBytes = 64;
    constexpr size_t kReadPerTurn = 1024 * 1024;
    constexpr size_t kMaxAnswerBytes = 16 * 1024 * 1024;
    char buffer[16384];
    for (size_t read_now = 0; read_now < kReadPerTurn;) {
        ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return Result::Pending;
        if (n < 0) return finish(Result::Failed);
        if (n == 0 || received_ > kMaxAnswerBytes) {
            http_status_ = parse_http_status(http_head_);
            return finish(http_status_ ? Result::Answered : Result::Failed);
        }
        received_ += static_cast<size_t>(n);
        read_now += static_cast<size_t>(n);
        if (http_head_.size() < kHeadBytes) {
            http_head_.append(buffer, std::min(static_cast<size_t>(n), kHeadBytes - http_head_.size()));
        }
    }
    return Result::Pending;
}

// Reads what the socket has now, in one turn up to a bounded amount (so one
// large answer does not hold the supervisor's other work up for long).
FcgiPingClient::Result FcgiPingClient::receive() {
    constexpr size_t kReadPerTurn = 1024 * 1024;
    char buffer[16384];
    for (size_t read_now = 0; read_now < kReadPerTurn;) {
        ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
        if (n < 0 && errno == EAGAIN) return Result::Pending;
        if (n <= 0) return finish(Result::Failed);
        received_ += static_cast<size_t>(n);
        read_now += static_cast<size_t>(n);
        switch (reader_.feed(std::string_view(buffer, static_cast<size_t>(n)))) {
            case FcgiReply::Status::Incomplete:
                if (received_ > max_reply_bytes_) return finish(Result::Failed);
                continue;
            case FcgiReply::Status::Complete: {
                std::string output = reader_.take_output();
                http_status_ = fcgi_output_status(output);
                body_.assign(fcgi_output_body(output));
                return finish(Result::Answered);
            }
            case FcgiReply::Status::Malformed: return finish(Result::Failed);
        }
    }
    return Result::Pending;
}

}  // namespace fpmr
