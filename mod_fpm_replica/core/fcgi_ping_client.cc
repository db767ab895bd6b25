#include "fcgi_ping_client.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fcgi_ping.h"

namespace fpmr {

FcgiPingClient::FcgiPingClient(const SocketSpec& socket, const std::string& path,
                               int64_t deadline_us)
    : request_(fcgi_ping_request(path)), deadline_us_(deadline_us) {
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
        ssize_t n = ::send(fd_, request_.data() + sent_, request_.size() - sent_, MSG_NOSIGNAL);
        if (n <= 0) return n < 0 && errno == EAGAIN ? Result::Pending : finish(Result::Failed);
        sent_ += static_cast<size_t>(n);
        return Result::Pending;
    }
    char buffer[4096];
    ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EAGAIN) return Result::Pending;
    if (n <= 0) return finish(Result::Failed);
    received_.append(buffer, static_cast<size_t>(n));
    FcgiReply reply = parse_fcgi_reply(received_);
    switch (reply.status) {
        case FcgiReply::Status::Incomplete:
            if (received_.size() > kMaxReplyBytes) break;
            return Result::Pending;
        case FcgiReply::Status::Complete:
            http_status_ = reply.http_status;
            return finish(Result::Answered);
        case FcgiReply::Status::Malformed: break;
    }
    return finish(Result::Failed);
}

}  // namespace fpmr
