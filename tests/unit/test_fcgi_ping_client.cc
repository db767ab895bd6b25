// The non-blocking FastCGI ping against small servers on unix sockets in
// this process: one that answers, one that never does, none at all.
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "fcgi_ping_client.h"

using namespace fpmr;

namespace {

int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::string record(unsigned char type, const std::string& content) {
    std::string r = {1, static_cast<char>(type), 0, 1, static_cast<char>(content.size() >> 8),
                     static_cast<char>(content.size() & 0xff), 0, 0};
    return r + content;
}

// A listening unix socket under /tmp, removed with it.
struct Listener {
    std::string path;
    int fd = -1;
    explicit Listener(const char* name) {
        path = "/tmp/fpmr-unit-" + std::to_string(::getpid()) + "-" + name + ".sock";
        ::unlink(path.c_str());
        fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(fd, 4) == 0);
    }
    ~Listener() {
        ::close(fd);
        ::unlink(path.c_str());
    }
    SocketSpec spec() const {
        std::string error;
        return *parse_socket("unix:" + path, &error);
    }
};

// accept(2), but giving up after 3 s (a client that never connected must
// not hang the test).
int accept_soon(int listener) {
    pollfd p{listener, POLLIN, 0};
    if (::poll(&p, 1, 3000) != 1) return -1;
    return ::accept(listener, nullptr, nullptr);
}

FcgiPingClient::Result run(FcgiPingClient& ping, int64_t limit_us) {
    int64_t end = now_us() + limit_us;
    FcgiPingClient::Result r;
    while ((r = ping.advance(now_us(), 20)) == FcgiPingClient::Result::Pending && now_us() < end) {
    }
    return r;
}

}  // namespace

TEST_CASE("a ping is answered by a server that sends a whole FastCGI reply", "[fcgi]") {
    Listener server("answers");
    // Catch2's assertions are not thread-safe: the server thread only
    // records what happened, checked after the join.
    bool read_request = false, wrote_reply = true;
    std::thread answer([&] {
        int c = accept_soon(server.fd);
        if (c < 0) return;
        char buffer[4096];
        read_request = ::read(c, buffer, sizeof buffer) > 0;  // the whole small request
        std::string reply = record(6, "Content-type: text/plain\r\n\r\npong") +
                            record(3, std::string(8, '\0'));
        // In two pieces: the client must wait for the end record.
        wrote_reply = ::write(c, reply.data(), 10) == 10;
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        wrote_reply = wrote_reply && ::write(c, reply.data() + 10, reply.size() - 10) ==
                                         static_cast<ssize_t>(reply.size() - 10);
        ::close(c);
    });
    FcgiPingClient ping(server.spec(), "/ping", now_us() + 2000000);
    bool connected = ping.fd() >= 0;
    FcgiPingClient::Result result = run(ping, 3000000);
    answer.join();
    CHECK(connected);
    CHECK(result == FcgiPingClient::Result::Answered);
    CHECK(ping.http_status() == 200);
    CHECK(ping.answered_ok());
    CHECK(ping.fd() == -1);
    CHECK(read_request);
    CHECK(wrote_reply);
}

TEST_CASE("an answer with a 5xx status is an answer, but not a passing check", "[fcgi]") {
    Listener server("fails");
    bool wrote = false;
    std::thread answer([&] {
        int c = accept_soon(server.fd);
        if (c < 0) return;
        char buffer[4096];
        (void)::read(c, buffer, sizeof buffer);
        std::string reply = record(6, "Status: 500 Internal Server Error\r\nContent-type: text/plain\r\n\r\nbroken") +
                            record(3, std::string(8, '\0'));
        wrote = ::write(c, reply.data(), reply.size()) == static_cast<ssize_t>(reply.size());
        ::close(c);
    });
    FcgiPingClient ping(server.spec(), "/ping", now_us() + 2000000);
    FcgiPingClient::Result result = run(ping, 3000000);
    answer.join();
    CHECK(wrote);
    CHECK(result == FcgiPingClient::Result::Answered);
    CHECK(ping.http_status() == 500);
    CHECK_FALSE(ping.answered_ok());
}

TEST_CASE("a ping fails at its deadline when the server never answers", "[fcgi]") {
    Listener server("hangs");  // listens, never accepts: the connection sits in the backlog
    int64_t started = now_us();
    FcgiPingClient ping(server.spec(), "/ping", started + 200000);
    // Not blocking: an advance without waiting returns at once.
    CHECK(ping.advance(now_us()) == FcgiPingClient::Result::Pending);
    CHECK(now_us() - started < 100000);
    CHECK(run(ping, 2000000) == FcgiPingClient::Result::Failed);
    int64_t took = now_us() - started;
    CHECK(took >= 200000);
    CHECK(took < 1000000);
}

TEST_CASE("a ping to a socket nobody listens on fails at once", "[fcgi]") {
    std::string error;
    FcgiPingClient ping(*parse_socket("unix:/tmp/fpmr-unit-nobody-here.sock", &error), "/ping",
                        now_us() + 1000000);
    CHECK(ping.advance(now_us()) == FcgiPingClient::Result::Failed);
    CHECK(ping.fd() == -1);
}

TEST_CASE("a malformed reply fails the ping", "[fcgi]") {
    Listener server("garbage");
    bool served = false;
    std::thread answer([&] {
        int c = accept_soon(server.fd);
        if (c < 0) return;
        char buffer[4096];
        const char http[] = "HTTP/1.1 200 OK\r\n\r\n";
        served = ::read(c, buffer, sizeof buffer) > 0 &&
                 ::write(c, http, sizeof http - 1) == static_cast<ssize_t>(sizeof http - 1);
        ::close(c);
    });
    FcgiPingClient ping(server.spec(), "/ping", now_us() + 2000000);
    FcgiPingClient::Result result = run(ping, 3000000);
    answer.join();
    CHECK(result == FcgiPingClient::Result::Failed);
    CHECK(served);
}

// A replica that streams output without ending its reply must not keep the
// supervisor reading (and re-parsing a growing buffer) until the deadline.
TEST_CASE("a reply that grows past the limit without ending fails the ping", "[fcgi]") {
    Listener server("floods");
    size_t sent = 0;
    std::thread flood([&] {
        int c = accept_soon(server.fd);
        if (c < 0) return;
        char buffer[4096];
        if (::read(c, buffer, sizeof buffer) <= 0) return;
        const std::string chunk = record(6, std::string(8000, 'x'));
        // Until the client hangs up (EPIPE) or well past the limit.
        while (sent < 4 * FcgiPingClient::kMaxReplyBytes) {
            ssize_t n = ::send(c, chunk.data(), chunk.size(), MSG_NOSIGNAL);
            if (n <= 0) break;
            sent += static_cast<size_t>(n);
        }
        pollfd p{c, POLLIN, 0};
        ::poll(&p, 1, 3000);  // the client's close
        ::close(c);
    });
    int64_t started = now_us();
    FcgiPingClient ping(server.spec(), "/ping", started + 10000000);
    FcgiPingClient::Result result = run(ping, 3000000);
    int64_t took = now_us() - started;
    flood.join();
    CHECK(result == FcgiPingClient::Result::Failed);
    CHECK(took < 3000000);
    CHECK(sent > FcgiPingClient::kMaxReplyBytes);
}

namespace {
// Reads a whole request (up to its empty STDIN record) from `c`, giving up
// after 3 s; the bytes read.
std::string read_request(int c) {
    std::string in;
    char buffer[65536];
    const std::string stdin_end("\x01\x05\x00\x01\x00\x00\x00\x00", 8);
    while (in.size() < stdin_end.size() ||
           in.compare(in.size() - stdin_end.size(), stdin_end.size(), stdin_end) != 0) {
        pollfd p{c, POLLIN, 0};
        if (::poll(&p, 1, 3000) != 1) break;
        ssize_t n = ::read(c, buffer, sizeof buffer);
        if (n <= 0) break;
        in.append(buffer, static_cast<size_t>(n));
    }
    return in;
}

bool write_all(int c, const std::string& bytes) {
    for (size_t at = 0; at < bytes.size();) {
        ssize_t n = ::send(c, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
        if (n <= 0) return false;
        at += static_cast<size_t>(n);
    }
    return true;
}

// A STDOUT stream of `body` after the headers, in records of at most 32 KiB.
std::string stdout_records(const std::string& headers, const std::string& body) {
    std::string all = headers + "\r\n\r\n" + body, out;
    for (size_t at = 0; at < all.size(); at += 32768) out += record(6, all.substr(at, 32768));
    return out + record(3, std::string(8, '\0'));
}
}  // namespace

TEST_CASE("a POST of a large body arrives whole and a large answer is kept", "[fcgi][warmup]") {
    Listener server("post");
    FcgiRequest request;
    request.method = "POST";
    request.path = "/usr/share/fpm-replica/warmup.php";
    request.query = "action=compile&deadline_ms=1000";
    for (int i = 0; i < 40000; ++i) request.body += "/srv/app/releases/r2/src/file" + std::to_string(i) + ".php\n";
    REQUIRE(request.body.size() > 1000000);  // more than a socket buffer holds
    std::string reply_body;
    for (int i = 0; i < 30000; ++i) reply_body += "/srv/app/releases/r1/src/cached" + std::to_string(i) + ".php\n";
    REQUIRE(reply_body.size() > 1000000);

    std::string got;
    bool wrote = false;
    std::thread answer([&] {
        int c = accept_soon(server.fd);
        if (c < 0) return;
        got = read_request(c);
        wrote = write_all(c, stdout_records("Content-type: text/plain", reply_body));
        ::close(c);
    });
    FcgiPingClient client(server.spec(), request, now_us() + 5000000,
                          FcgiPingClient::kMaxWarmupReplyBytes);
    FcgiPingClient::Result result = run(client, 6000000);
    answer.join();
    CHECK(got == fcgi_request(request));
    CHECK(wrote);
    CHECK(result == FcgiPingClient::Result::Answered);
    CHECK(client.answered_ok());
    CHECK(client.body() == reply_body);
}

TEST_CASE("a large answer fails a client that keeps the ping's limit", "[fcgi][warmup]") {
    Listener server("toolarge");
    std::thread answer([&] {
        int c = accept_soon(server.fd);
        if (c < 0) return;
        read_request(c);
        write_all(c, stdout_records("Content-type: text/plain",
                                    std::string(2 * FcgiPingClient::kMaxReplyBytes, 'x')));
        ::close(c);
    });
    FcgiRequest request;
    request.path = "/w.php";
    request.query = "action=list";
    FcgiPingClient client(server.spec(), request, now_us() + 3000000);
    FcgiPingClient::Result result = run(client, 4000000);
    answer.join();
    CHECK(result == FcgiPingClient::Result::Failed);
    CHECK(client.body().empty());
}

TEST_CASE("a ping keeps its small body and its status", "[fcgi]") {
    Listener server("pingbody");
    std::thread answer([&] {
        int c = accept_soon(server.fd);
        if (c < 0) return;
        read_request(c);
        write_all(c, record(6, "Status: 409 Conflict\r\nContent-type: text/plain\r\n\r\nopcache is off\n") +
                         record(3, std::string(8, '\0')));
        ::close(c);
    });
    FcgiPingClient ping(server.spec(), "/ping", now_us() + 2000000);
    FcgiPingClient::Result result = run(ping, 3000000);
    answer.join();
    CHECK(result == FcgiPingClient::Result::Answered);
    CHECK(ping.http_status() == 409);
    CHECK(ping.body() == "opcache is off\n");
}
