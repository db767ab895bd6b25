// The supervisor engine's world in production: fork/exec of php-fpm masters,
// their signals and exits, FastCGI pings, ap_log_error.
#include "glue_supervisor_world.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

namespace fpmr::glue {

namespace {

int httpd_level(LogLevel level) {
    switch (level) {
        case LogLevel::Debug: return APLOG_DEBUG;
        case LogLevel::Info: return APLOG_INFO;
        case LogLevel::Notice: return APLOG_NOTICE;
        case LogLevel::Warning: return APLOG_WARNING;
        case LogLevel::Error: return APLOG_ERR;
        case LogLevel::Critical: return APLOG_CRIT;
    }
    return APLOG_ERR;
}

// Forks and execs one master in a session (and process group) of its own,
// so it can be stopped whole, with only stdin/stdout/stderr and the planned
// environment.
pid_t fork_master(const SpawnPlan& plan) {
    pid_t pid = ::fork();
    if (pid != 0) return pid;
    ::setsid();
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD, SIGPIPE}) {
        ::signal(sig, SIG_DFL);
    }
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::close_range(3, ~0U, 0);
    std::vector<char*> argv, envp;
    std::vector<std::string> args = plan.argv, env = plan.env;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
}

}  // namespace

void HttpdLogSink::write(LogLevel level, const std::string& message) {
    ap_log_error(APLOG_MARK, httpd_level(level), 0, s_, "%s", message.c_str());
}

SystemMasters::~SystemMasters() {
    for (auto& [pid, held] : masters_) release(held.handle);
}

std::optional<MasterIdentity> SystemMasters::spawn(const SpawnPlan& plan,
                                                   const std::vector<SocketSpec>& sockets) {
    for (const SocketSpec& socket : sockets) ensure_socket_directory(socket, s_);
    pid_t pid = fork_master(plan);
    if (pid <= 0) return std::nullopt;
    Held held;
    held.handle = hold_child(pid);
    masters_[pid] = held;
    return held.handle.identity;
}

bool SystemMasters::adopt(const MasterIdentity& master) {
    std::optional<MasterHandle> handle = hold_adopted(master.pid, master.start_time);
    if (!handle) return false;
    masters_[master.pid] = Held{*handle, true};
    return true;
}

void SystemMasters::ask_to_stop(int32_t pid) {
    auto it = masters_.find(pid);
    if (it != masters_.end()) signal_master(it->second.handle, SIGQUIT);
}

void SystemMasters::kill_with_workers(int32_t pid) {
    auto it = masters_.find(pid);
    if (it != masters_.end()) kill_group(it->second.handle);
}

void SystemMasters::forget(pid_t pid) {
    auto it = masters_.find(pid);
    if (it == masters_.end()) return;
    release(it->second.handle);
    masters_.erase(it);
}

// Our children are seen exiting with WNOWAIT first: while the zombie is not
// reaped its pid (and so its process group number) cannot be reused, so the
// SIGKILL to what is left of its group cannot hit anyone else's processes.
// Only then is it reaped. Adopted masters are not our children: their pidfd
// says they are gone (exit status unknown; reported as 0).
std::vector<MasterExit> SystemMasters::collect_exits() {
    std::vector<MasterExit> exits;
    for (;;) {
        siginfo_t info{};
        if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) break;
        pid_t pid = info.si_pid;
        int status = 0;
        auto it = masters_.find(pid);
        if (it != masters_.end() && !it->second.adopted) {
            kill_group(it->second.handle);  // workers of a master that is gone
            ::waitpid(pid, &status, 0);
            forget(pid);
            exits.push_back({pid, status});
        } else {
            ::waitpid(pid, &status, 0);  // not a master (or already forgotten)
        }
    }
    std::vector<pid_t> gone;
    for (auto& [pid, held] : masters_) {
        if (held.adopted && exited(held.handle)) {
            kill_master_and_workers(held.handle);
            gone.push_back(pid);
        }
    }
    for (pid_t pid : gone) {
        forget(pid);
        exits.push_back({pid, 0});
    }
    return exits;
}

void SystemMasters::kill_and_forget(int32_t pid) {
    auto it = masters_.find(pid);
    if (it == masters_.end()) return;
    kill_master_and_workers(it->second.handle);
    if (!it->second.adopted) ::waitpid(pid, nullptr, 0);
    forget(pid);
}

class SocketPings::Ping : public MasterPing {
public:
    Ping(std::set<const FcgiPingClient*>* registry, const SocketSpec& socket, const std::string& path,
         int64_t deadline_us)
        : registry_(registry), client_(socket, path, deadline_us) {
        registry_->insert(&client_);
    }
    Ping(std::set<const FcgiPingClient*>* registry, const SocketSpec& socket, const FcgiRequest& request,
         int64_t deadline_us, size_t max_reply_bytes)
        : registry_(registry), client_(socket, request, deadline_us, max_reply_bytes) {
        registry_->insert(&client_);
    }
    Ping(std::set<const FcgiPingClient*>* registry, FcgiPingClient::Http http, const SocketSpec& listener,
         const std::string& http_request, int64_t deadline_us)
        : registry_(registry), client_(http, listener, http_request, deadline_us) {
        registry_->insert(&client_);
    }
    ~Ping() override { registry_->erase(&client_); }
    Result advance(int64_t now_us) override {
        switch (client_.advance(now_us)) {
            case FcgiPingClient::Result::Pending: return Result::Pending;
            case FcgiPingClient::Result::Answered: return Result::Answered;
            case FcgiPingClient::Result::Failed: return Result::Failed;
        }
        return Result::Failed;
    }
    int http_status() const override { return client_.http_status(); }
    std::string body() const override { return client_.body(); }

private:
    std::set<const FcgiPingClient*>* registry_;
    FcgiPingClient client_;
};

std::unique_ptr<MasterPing> SocketPings::start(const SocketSpec& socket, const std::string& path,
                                               int64_t deadline_us) {
    return std::make_unique<Ping>(&in_flight_, socket, path, deadline_us);
}

bool SocketPings::script_present(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::unique_ptr<MasterPing> SocketPings::start_request(const SocketSpec& socket, const FcgiRequest& request,
                                                       int64_t deadline_us, size_t max_reply_bytes) {
    return std::make_unique<Ping>(&in_flight_, socket, request, deadline_us, max_reply_bytes);
}

std::unique_ptr<MasterPing> SocketPings::start_http(const SocketSpec& listener, const std::string& request,
                                                    int64_t deadline_us) {
    return std::make_unique<Ping>(&in_flight_, FcgiPingClient::Http{}, listener, request, deadline_us);
}

// 0 when the kernel gives none (the engine then requests no URL path):
// getrandom blocks only before the kernel's pool is initialised, long past
// at any httpd start.
uint64_t KernelRandom::next() {
    uint64_t value = 0;
    for (int attempt = 0; attempt < 3; ++attempt) {
        ssize_t n = ::getrandom(&value, sizeof value, 0);
        if (n == static_cast<ssize_t>(sizeof value)) return value;
        if (n < 0 && errno != EINTR) break;
    }
    return 0;
}

void SocketPings::wait(int64_t wait_us) const {
    std::vector<pollfd> fds;
    for (const FcgiPingClient* client : in_flight_) {
        if (client->fd() >= 0) fds.push_back({client->fd(), client->events(), 0});
    }
    if (fds.empty()) {
        timespec ts{static_cast<time_t>(wait_us / 1000000), static_cast<long>((wait_us % 1000000) * 1000)};
        ::nanosleep(&ts, nullptr);
        return;
    }
    ::poll(fds.data(), fds.size(), static_cast<int>(wait_us / 1000));
}

}  // namespace fpmr::glue
