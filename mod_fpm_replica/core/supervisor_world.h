// What the supervisor engine (supervisor_engine.h) does to the world, as
// small interfaces: the clock, the php-fpm master processes, the FastCGI
// pings that tell whether a master answers, and the log. The glue implements
// them with system calls (glue_supervisor_world.cc); the unit tests with a
// fake process table and a fake clock (tests/unit/test_supervisor_engine.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config_parse.h"
#include "fcgi_ping.h"
#include "log_text.h"
#include "proc_stat.h"
#include "supervision.h"

namespace fpmr {

// Monotonic microseconds (steady_clock in the glue): every deadline of the
// engine is on it.
class SupervisorClock {
public:
    virtual ~SupervisorClock() = default;
    virtual int64_t now_us() = 0;
};

// One master that has exited, as collect_exits() reports it.
struct MasterExit {
    int32_t pid = 0;
    // A wait(2) status; for a master the engine took over from a dead
    // supervisor (not its child) the status is unknown and reads as 0.
    int wait_status = 0;
};

// The php-fpm masters. Every signal goes to a process proven to be the
// master that was started or taken over (the glue holds a pidfd and its
// start time), never to a pid the engine merely names.
class MasterProcesses {
public:
    virtual ~MasterProcesses() = default;
    // Forks and execs a master in a session of its own, after creating what
    // is missing of its sockets' directories. nullopt when it cannot fork.
    virtual std::optional<MasterIdentity> spawn(const SpawnPlan& plan,
                                                const std::vector<SocketSpec>& sockets) = 0;
    // Takes over a master a dead supervisor left: false unless the process
    // with that pid is still that master (same start time, own session).
    virtual bool adopt(const MasterIdentity& master) = 0;
    // php-fpm's graceful stop (SIGQUIT): workers finish their request.
    virtual void ask_to_stop(int32_t pid) = 0;
    // SIGKILL to the master and its workers.
    virtual void kill_with_workers(int32_t pid) = 0;
    // Masters that exited since the last call (what they left of their
    // process group is killed first); each is forgotten once reported.
    virtual std::vector<MasterExit> collect_exits() = 0;
    // At the end of a stop: SIGKILL to the master and its workers, waits
    // for it, and forgets it.
    virtual void kill_and_forget(int32_t pid) = 0;
};

// One FastCGI request to a master's socket in flight (FcgiPingClient in the
// glue), advanced without blocking.
class MasterPing {
public:
    enum class Result { Pending, Answered, Failed };
    virtual ~MasterPing() = default;
    virtual Result advance(int64_t now_us) = 0;
    // The HTTP status of an Answered reply (200 without a Status header).
    virtual int http_status() const = 0;
    // The body of an Answered reply (bounded by the start's max_reply_bytes).
    virtual std::string body() const = 0;
};

class MasterPings {
public:
    virtual ~MasterPings() = default;
    // A GET of `path` on `socket`, to be answered by `deadline_us`.
    virtual std::unique_ptr<MasterPing> start(const SocketSpec& socket, const std::string& path,
                                              int64_t deadline_us) = 0;
    // Whether the warm-up script is installed at `path` (a regular file):
    // without it (a module built from source, no package) warm-up is skipped.
    virtual bool script_present(const std::string& path) = 0;
    // Any request (the warm-up's list and compile), its answer bounded by
    // `max_reply_bytes`.
    virtual std::unique_ptr<MasterPing> start_request(const SocketSpec& socket, const FcgiRequest& request,
                                                      int64_t deadline_us, size_t max_reply_bytes) = 0;
    // A plain HTTP request through httpd (the warm-up's URL paths), its
    // bytes whole (core/warmup_urls); answered once httpd closes the
    // connection after a status line. Its body is empty.
    virtual std::unique_ptr<MasterPing> start_http(const SocketSpec& listener, const std::string& request,
                                                   int64_t deadline_us) = 0;
};

// Unpredictable numbers (the warm-up's one-time tokens).
class RandomSource {
public:
    virtual ~RandomSource() = default;
    virtual uint64_t next() = 0;
};

// Everything the engine acts through.
struct SupervisorWorld {
    SupervisorClock& clock;
    MasterProcesses& processes;
    MasterPings& pings;
    LogSink& log;
    RandomSource& random;
};

}  // namespace fpmr
