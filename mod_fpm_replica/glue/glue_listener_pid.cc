// Which process listens on a replica's unix socket, asked of the kernel
// (SO_PEERCRED), for the status document of masters the supervisor did not
// start.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "glue.h"

namespace fpmr::glue {

// A non-blocking connect: the listener's credentials are known as soon as the
// connection is queued, without waiting for php-fpm to accept it.
int32_t listener_pid(const SocketSpec& socket) {
    if (socket.kind != SocketSpec::Kind::Unix) return 0;
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket.path.c_str(), sizeof addr.sun_path - 1);
    int32_t pid = 0;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        ucred cred{};
        socklen_t len = sizeof cred;
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) pid = cred.pid;
    }
    ::close(fd);
    return pid;
}

}  // namespace fpmr::glue
