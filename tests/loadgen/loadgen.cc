// fpmr-loadgen: an HTTP/1.1 load generator that records every response.
//
// Each client thread loops over one path until the deadline (or its request
// budget), on a keep-alive connection it reopens when the server closes it.
// Every request becomes one line of the output file:
//
//   start_us <TAB> end_us <TAB> status <TAB> path <TAB> error <TAB> body
//
// (wall-clock microseconds since the epoch, so a test can relate responses to
// the moment it killed a process; status 0 means no HTTP response at all:
// reset, timeout, refused; body is the first 1024 bytes on one line).
// Only loopback targets are accepted: this tool is for tests on this machine.
//
// SIGTERM stops it early, records written.
//
// Usage: fpmr-loadgen --port P --duration SECONDS --out FILE
//                     --path /fast.php:8 [--path /slow.php:2 ...]
//                     [--host 127.0.0.1] [--timeout SECONDS] [--max-requests N]
//                     [--header "Name: value"] [--pause MS]
//
// --pause MS: each client waits MS milliseconds after every response, so a
// test that runs other work beside the load (a deploy tool) keeps some CPU.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

// SIGTERM ends the run early: every client finishes its request in progress
// and the records are written as at the deadline.
std::atomic<bool> g_stop{false};
void on_term(int) { g_stop = true; }

struct Options {
    std::string host = "127.0.0.1";
    int port = 0;
    double duration_s = 5;
    double timeout_s = 30;
    long max_requests = 0;  // per client; 0 = until the deadline
    double pause_ms = 0;    // per client, after every response
    std::string out;
    std::vector<std::pair<std::string, int>> paths;  // path, clients
    std::vector<std::string> headers;
};

struct Record {
    int64_t start_us, end_us;
    int status;
    std::string path, error, body;
};

int64_t wall_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr, "fpmr-loadgen: %s\n", why);
    std::fprintf(stderr,
                 "usage: fpmr-loadgen --port P --duration S --out FILE --path PATH:CLIENTS "
                 "[--path ...] [--host 127.0.0.1] [--timeout S] [--max-requests N] "
                 "[--header 'Name: value'] [--pause MS]\n");
    std::exit(2);
}

class Connection {
public:
    Connection(const Options& o) : opt_(o) {}
    ~Connection() { close_socket(); }

    // Sends one GET and reads the whole response. Returns the status, or 0
    // with *error set.
    int request(const std::string& path, std::string* body, std::string* error) {
        for (int attempt = 0; attempt < 2; ++attempt) {
            bool reused = fd_ >= 0;
            if (fd_ < 0 && !open_socket(error)) return 0;
            std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + opt_.host + "\r\n";
            for (const auto& h : opt_.headers) req += h + "\r\n";
            req += "\r\n";
            if (!send_all(req)) {
                close_socket();
                if (reused) continue;  // the server closed an idle keep-alive connection
                *error = std::string("send: ") + std::strerror(errno);
                return 0;
            }
            bool nothing_read = false;
            int status = read_response(body, error, &nothing_read);
            if (status == 0 && reused && nothing_read) {
                // The server closed this keep-alive connection while it was
                // idle (keep-alive timeout, graceful restart) and our request
                // crossed the close: RFC 9112 9.3.1 lets a client retry an
                // idempotent request on a new connection, as browsers do.
                close_socket();
                continue;
            }
            return status;
        }
        *error = "connection closed twice before a response";
        return 0;
    }

private:
    bool open_socket(std::string* error) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) {
            *error = std::string("socket: ") + std::strerror(errno);
            return false;
        }
        timeval tv{};
        tv.tv_sec = static_cast<long>(opt_.timeout_s);
        tv.tv_usec = static_cast<long>((opt_.timeout_s - tv.tv_sec) * 1e6);
        setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        int one = 1;
        setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(opt_.port));
        inet_pton(AF_INET, opt_.host.c_str(), &addr.sin_addr);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            *error = std::string("connect: ") + std::strerror(errno);
            close_socket();
            return false;
        }
        buf_.clear();
        return true;
    }

    void close_socket() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
        buf_.clear();
    }

    bool send_all(const std::string& data) {
        size_t sent = 0;
        while (sent < data.size()) {
            ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) return false;
            sent += static_cast<size_t>(n);
        }
        return true;
    }

    // Appends more bytes to buf_; false on EOF, error or timeout.
    bool fill(std::string* error) {
        char chunk[16384];
        ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n > 0) {
            buf_.append(chunk, static_cast<size_t>(n));
            return true;
        }
        if (n == 0) {
            *error = "connection closed by server";
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            *error = "timeout";
        } else {
            *error = std::string("recv: ") + std::strerror(errno);
        }
        return false;
    }

    bool read_line(std::string* line, std::string* error) {
        size_t pos;
        while ((pos = buf_.find("\r\n")) == std::string::npos) {
            if (!fill(error)) return false;
        }
        *line = buf_.substr(0, pos);
        buf_.erase(0, pos + 2);
        return true;
    }

    bool read_exact(size_t n, std::string* out, std::string* error) {
        while (buf_.size() < n) {
            if (!fill(error)) return false;
        }
        out->append(buf_, 0, n);
        buf_.erase(0, n);
        return true;
    }

    int read_response(std::string* body, std::string* error, bool* nothing_read) {
        std::string line;
        *nothing_read = false;
        if (!read_line(&line, error)) {
            *nothing_read = buf_.empty();
            close_socket();
            return 0;
        }
        int status = 0;
        if (std::sscanf(line.c_str(), "HTTP/%*d.%*d %d", &status) != 1) {
            *error = "bad status line";
            close_socket();
            return 0;
        }
        long content_length = -1;
        bool chunked = false, close_after = false;
        while (true) {
            if (!read_line(&line, error)) {
                close_socket();
                return 0;
            }
            if (line.empty()) break;
            std::string lower = line;
            for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (lower.rfind("content-length:", 0) == 0) content_length = std::atol(line.c_str() + 15);
            if (lower.rfind("transfer-encoding:", 0) == 0 && lower.find("chunked") != std::string::npos) chunked = true;
            if (lower.rfind("connection:", 0) == 0 && lower.find("close") != std::string::npos) close_after = true;
        }
        body->clear();
        if (chunked) {
            while (true) {
                if (!read_line(&line, error)) {
                    close_socket();
                    return 0;
                }
                size_t size = std::strtoul(line.c_str(), nullptr, 16);
                if (size == 0) {
                    // trailers until the empty line
                    do {
                        if (!read_line(&line, error)) {
                            close_socket();
                            return 0;
                        }
                    } while (!line.empty());
                    break;
                }
                std::string crlf;
                if (!read_exact(size, body, error) || !read_exact(2, &crlf, error)) {
                    close_socket();
                    return 0;
                }
            }
        } else if (content_length >= 0) {
            if (!read_exact(static_cast<size_t>(content_length), body, error)) {
                close_socket();
                return 0;
            }
        } else {
            std::string eof_error;
            while (fill(&eof_error)) {
            }
            *body = buf_;
            buf_.clear();
            close_after = true;
        }
        if (close_after) close_socket();
        return status;
    }

    const Options& opt_;
    int fd_ = -1;
    std::string buf_;
};

std::string one_line(const std::string& s) {
    std::string out = s.substr(0, 1024);
    for (auto& c : out) {
        if (c == '\t' || c == '\n' || c == '\r') c = ' ';
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) usage(("missing value for " + a).c_str());
            return argv[++i];
        };
        if (a == "--host") opt.host = next();
        else if (a == "--port") opt.port = std::atoi(next().c_str());
        else if (a == "--duration") opt.duration_s = std::atof(next().c_str());
        else if (a == "--timeout") opt.timeout_s = std::atof(next().c_str());
        else if (a == "--max-requests") opt.max_requests = std::atol(next().c_str());
        else if (a == "--out") opt.out = next();
        else if (a == "--header") opt.headers.push_back(next());
        else if (a == "--pause") opt.pause_ms = std::atof(next().c_str());
        else if (a == "--path") {
            std::string v = next();
            size_t colon = v.rfind(':');
            int clients = colon == std::string::npos ? 1 : std::atoi(v.c_str() + colon + 1);
            if (clients < 1) usage("--path PATH:CLIENTS needs CLIENTS >= 1");
            opt.paths.emplace_back(v.substr(0, colon), clients);
        } else usage(("unknown argument " + a).c_str());
    }
    if (opt.port <= 0 || opt.out.empty() || opt.paths.empty()) usage("--port, --out and --path are required");
    in_addr addr{};
    if (inet_pton(AF_INET, opt.host.c_str(), &addr) != 1 || (ntohl(addr.s_addr) >> 24) != 127) {
        usage("--host must be a loopback address (127.0.0.0/8)");
    }

    std::signal(SIGTERM, on_term);
    std::mutex mu;
    std::vector<Record> records;
    const int64_t deadline = wall_us() + static_cast<int64_t>(opt.duration_s * 1e6);
    std::vector<std::thread> threads;
    for (const auto& [path, clients] : opt.paths) {
        for (int c = 0; c < clients; ++c) {
            threads.emplace_back([&, path = path] {
                Connection conn(opt);
                std::vector<Record> mine;
                for (long n = 0; !g_stop && wall_us() < deadline &&
                                 (!opt.max_requests || n < opt.max_requests);
                     ++n) {
                    Record r;
                    r.path = path;
                    r.start_us = wall_us();
                    std::string body;
                    r.status = conn.request(path, &body, &r.error);
                    r.end_us = wall_us();
                    r.body = one_line(body);
                    mine.push_back(std::move(r));
                    if (opt.pause_ms > 0) {
                        std::this_thread::sleep_for(
                            std::chrono::microseconds(static_cast<int64_t>(opt.pause_ms * 1000)));
                    }
                }
                std::lock_guard<std::mutex> lock(mu);
                records.insert(records.end(), std::make_move_iterator(mine.begin()),
                               std::make_move_iterator(mine.end()));
            });
        }
    }
    for (auto& t : threads) t.join();

    FILE* f = std::fopen(opt.out.c_str(), "w");
    if (!f) {
        std::perror(opt.out.c_str());
        return 1;
    }
    long failed = 0;
    for (const auto& r : records) {
        if (r.status == 0 || r.status >= 500) ++failed;
        std::fprintf(f, "%lld\t%lld\t%d\t%s\t%s\t%s\n", static_cast<long long>(r.start_us),
                     static_cast<long long>(r.end_us), r.status, r.path.c_str(), r.error.c_str(),
                     r.body.c_str());
    }
    std::fclose(f);
    std::printf("requests %zu failed %ld\n", records.size(), failed);
    return 0;
}
