// FcgiPingClient against a hostile or broken replica: a unix socket whose
// server reads the ping request and answers with the fuzzer's bytes, then
// closes. The client must reach a verdict (never stay pending on a closed
// socket) and answer exactly when the bytes hold a complete FastCGI reply.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "fcgi_ping.h"
#include "fcgi_ping_client.h"
#include "fuzz_input.h"

using namespace fpmr;
using fpmr::fuzz::violated;

namespace {

constexpr const char* kPath = "/ping";
// The deadline is never reached: every verdict must come from the bytes.
constexpr int64_t kNow = 0;
constexpr int64_t kDeadline = 3600LL * 1000000;

struct Listener {
    std::string dir;
    SocketSpec socket;
    int fd = -1;
};

// One listening socket for the whole run, in a private temporary directory.
const Listener& listener() {
    static const Listener* made = [] {
        auto* l = new Listener;
        char dir[] = "/tmp/fpmr-fuzz-XXXXXX";
        if (!::mkdtemp(dir)) violated("mkdtemp");
        l->dir = dir;
        l->socket.kind = SocketSpec::Kind::Unix;
        l->socket.path = l->dir + "/replica.sock";
        l->fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        l->socket.path.copy(addr.sun_path, sizeof addr.sun_path - 1);
        if (l->fd < 0 || ::bind(l->fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(l->fd, 4) != 0) {
            violated("cannot listen on the test socket");
        }
        std::atexit([] {
            ::unlink(listener().socket.path.c_str());
            ::rmdir(listener().dir.c_str());
        });
        return l;
    }();
    return *made;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // Larger answers would not fit the socket buffer of one send, and the
    // client gives up on them anyway.
    if (size > FcgiPingClient::kMaxReplyBytes) return 0;
    const Listener& l = listener();
    const std::string answer(fpmr::fuzz::as_text(data, size));
    FcgiPingClient client(l.socket, kPath, kDeadline);
    int server = ::accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (server < 0) violated("the client did not connect");

    // Let the client send its whole request, and read it, so that closing
    // the server end later is an orderly end of stream and not a reset.
    const size_t request_size = fcgi_ping_request(kPath).size();
    size_t received = 0;
    char buffer[4096];
    for (int round = 0; received < request_size; ++round) {
        if (round > 100) violated("the client never sent its request");
        if (client.advance(kNow, 0) != FcgiPingClient::Result::Pending) violated("verdict before any answer");
        ssize_t n = ::recv(server, buffer, sizeof buffer, MSG_DONTWAIT);
        if (n > 0) received += static_cast<size_t>(n);
    }
    // The answer fits a unix socket's buffer, so one blocking send and a
    // close deliver all of it.
    if (!answer.empty() && ::send(server, answer.data(), answer.size(), MSG_NOSIGNAL) !=
                               static_cast<ssize_t>(answer.size())) {
        violated("short send to the client");
    }
    ::close(server);

    FcgiPingClient::Result result = FcgiPingClient::Result::Pending;
    for (int round = 0; result == FcgiPingClient::Result::Pending; ++round) {
        if (round > 10000) violated("the client stays pending on a closed socket");
        result = client.advance(kNow, 100);
    }
    bool complete = parse_fcgi_reply(answer).status == FcgiReply::Status::Complete;
    if (complete != (result == FcgiPingClient::Result::Answered)) {
        violated("the client's verdict differs from parse_fcgi_reply's");
    }
    return 0;
}
