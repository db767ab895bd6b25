// The supervisor engine's world in production: the steady clock, php-fpm
// masters forked and signalled through pidfds (glue_masters.h), FastCGI pings
// over real sockets, and a log sink bridged to ap_log_error.
#pragma once

#include <sys/types.h>

#include <map>
#include <set>
#include <vector>

#include "fcgi_ping_client.h"
#include "glue.h"
#include "glue_masters.h"
#include "supervisor_world.h"

namespace fpmr::glue {

class SteadyClock : public SupervisorClock {
public:
    int64_t now_us() override { return glue::now_us(); }
};

class HttpdLogSink : public LogSink {
public:
    explicit HttpdLogSink(server_rec* s) : s_(s) {}
    void write(LogLevel level, const std::string& message) override;

private:
    server_rec* s_;
};

class SystemMasters : public MasterProcesses {
public:
    explicit SystemMasters(server_rec* s) : s_(s) {}
    ~SystemMasters() override;
    std::optional<MasterIdentity> spawn(const SpawnPlan& plan,
                                        const std::vector<SocketSpec>& sockets) override;
    bool adopt(const MasterIdentity& master) override;
    void ask_to_stop(int32_t pid) override;
    void kill_with_workers(int32_t pid) override;
    std::vector<MasterExit> collect_exits() override;
    void kill_and_forget(int32_t pid) override;

private:
    struct Held {
        MasterHandle handle;
        bool adopted = false;  // started by a supervisor before us: not our child,
                               // so its exit is seen through its pidfd, not by waitpid
    };
    void forget(pid_t pid);

    server_rec* s_;
    std::map<pid_t, Held> masters_;
};

// Pings over FcgiPingClient; keeps the descriptors of those in flight so the
// loop can poll them all at once.
class SocketPings : public MasterPings {
public:
    std::unique_ptr<MasterPing> start(const SocketSpec& socket, const std::string& path,
                                      int64_t deadline_us) override;
    bool script_present(const std::string& path) override;
    std::unique_ptr<MasterPing> start_request(const SocketSpec& socket, const FcgiRequest& request,
                                              int64_t deadline_us, size_t max_reply_bytes) override;
    std::unique_ptr<MasterPing> start_http(const SocketSpec& listener, const std::string& request,
                                           int64_t deadline_us) override;
    // Sleeps up to `wait_us`, less if a ping in flight can make progress.
    void wait(int64_t wait_us) const;

private:
    class Ping;
    std::set<const FcgiPingClient*> in_flight_;
};

// getrandom(2).
class KernelRandom : public RandomSource {
public:
    uint64_t next() override;
};

// Creates what is missing of a unix socket's directory (root, 0755), as
// systemd's RuntimeDirectory= would, without following a symlink someone
// other than root can change (glue_socket_directory.cc).
void ensure_socket_directory(const SocketSpec& socket, server_rec* s);

}  // namespace fpmr::glue
