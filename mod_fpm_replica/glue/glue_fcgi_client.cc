// A FastCGI ping over a socket: connect (bounded), send the ping request of
// core/fcgi_ping, read until the answer is complete. Used for readiness, the
// health checks and the probe lane; requests of clients never come here.
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "fcgi_ping.h"
#include "glue.h"

namespace fpmr::glue {

namespace {

// A connected, non-blocking socket to `spec`, or -1.
int connect_to(const SocketSpec& spec, int timeout_ms) {
    int fd = -1;
    int rc;
    if (spec.kind == SocketSpec::Kind::Unix) {
        fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) return -1;
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, spec.path.c_str(), sizeof addr.sun_path - 1);
        rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    } else {
        addrinfo hints{}, *res = nullptr;
        hints.ai_socktype = SOCK_STREAM;
        if (::getaddrinfo(spec.host.c_str(), std::to_string(spec.port).c_str(), &hints, &res) != 0) {
            return -1;
        }
        fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        rc = fd < 0 ? -1 : ::connect(fd, res->ai_addr, res->ai_addrlen);
        ::freeaddrinfo(res);
        if (fd < 0) return -1;
    }
    if (rc != 0 && (errno == EINPROGRESS || errno == EAGAIN)) {
        pollfd p{fd, POLLOUT, 0};
        int err = 0;
        socklen_t len = sizeof err;
        if (::poll(&p, 1, timeout_ms) == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
            err == 0) {
            rc = 0;
        }
    }
    if (rc != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// A replica is ready when it answers a FastCGI request for its ping path
// (php-fpm's ping.path; any complete answer proves a worker ran it), on its
// status socket when it has one: that pool answers even when every worker
// of the main pool is busy.
}  // namespace

bool answers_ping(const SocketSpec& spec, int timeout_ms, const std::string& path) {
    int fd = connect_to(spec, timeout_ms);
    if (fd < 0) return false;
    std::string request = fcgi_ping_request(path);
    int64_t deadline = now_us() + timeout_ms * 1000LL;
    size_t sent = 0;
    std::string received;
    bool complete = false;
    while (now_us() < deadline) {
        pollfd p{fd, static_cast<short>(sent < request.size() ? POLLOUT : POLLIN), 0};
        if (::poll(&p, 1, static_cast<int>((deadline - now_us()) / 1000) + 1) <= 0) break;
        if (sent < request.size()) {
            ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) break;
            sent += static_cast<size_t>(n);
            continue;
        }
        char buf[4096];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        received.append(buf, static_cast<size_t>(n));
        FcgiReply reply = parse_fcgi_reply(received);
        if (reply.status != FcgiReply::Status::Incomplete) {
            complete = reply.status == FcgiReply::Status::Complete;
            break;
        }
    }
    ::close(fd);
    return complete;
}

}  // namespace fpmr::glue
