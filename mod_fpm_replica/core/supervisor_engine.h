// The replica supervisor's state machine, as plain C++: it starts every
// supervised replica, marks it ready once its socket answers, restarts it
// with backoff when it dies (failed after repeated quick crashes), replaces
// replicas one at a time per vhost at every restart of httpd (the new master
// starts on the replica's alternate socket, takes new requests once it
// answers, the old one stops once empty or at the drain timeout), brings up
// a master on a release a deploy tool prepares, retires replicas removed
// from the configuration, health-checks replicas, takes over the masters a
// dead supervisor left, and stops them all when httpd stops.
//
// It acts only through SupervisorWorld (processes, pings, clock, log) and
// the shared state, so it is driven by the glue's poll loop
// (glue_supervisor.cc) in production and by a fake process table and a fake
// clock in the unit tests.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shared_state.h"
#include "supervisor_plan.h"
#include "supervisor_world.h"

namespace fpmr {

class SupervisorEngine {
public:
    // How long a readiness ping may take (a master that is up answers in
    // microseconds; a failed one is tried again the next turn).
    static constexpr int64_t kReadyPingUs = 500000;
    // How long a new master may take to answer before its start is
    // abandoned (a replacement: the current master keeps serving).
    static constexpr int64_t kStartTimeoutUs = 30 * 1000000LL;
    // How long a master whose requests had their drain time already may
    // take to exit after SIGQUIT before SIGKILL.
    static constexpr int64_t kStopGraceUs = 10 * 1000000LL;
    // A removed replica's masters stop no sooner than this after the
    // restart: children of the old generation may still send it requests.
    static constexpr int64_t kRetireGraceUs = 2 * 1000000LL;
    // A prepare request whose sequence counter stays odd this long is cleared.
    static constexpr int64_t kStuckRequestUs = 1000000;
    // A release whose replacement failed is not tried again before this.
    static constexpr int64_t kFailedReleaseRetryUs = 30 * 1000000LL;

    struct Limits {
        // Masters starting at once across all vhosts (first starts,
        // restarts, replacements): php-fpm's start is CPU work, and a host
        // with hundreds of sites must not start them all together.
        int max_starting = 8;
    };

    // `shared` must be writable (the supervisor's mapping of the trusted block).
    SupervisorEngine(const SupervisorPlan& plan, const SharedState& shared, SupervisorWorld world,
                     Limits limits);
    ~SupervisorEngine();
    SupervisorEngine(const SupervisorEngine&) = delete;
    SupervisorEngine& operator=(const SupervisorEngine&) = delete;

    // A supervisor started after its predecessor died: takes over the
    // masters recorded in the trusted block. Returns how many.
    int adopt_running_masters();

    // httpd restarted (its configuration generation changed): `plan` is the
    // new configuration, nullopt when none arrived (the replicas keep their
    // settings). Either way every running replica is replaced.
    void on_httpd_restart(const std::optional<SupervisorPlan>& plan);

    // One turn of the loop: exits, requests from the status handler,
    // starts, readiness, replacements, retirements, stop deadlines, health.
    void turn();

    // httpd is stopping: php-fpm's graceful stop for every master. Then
    // turn_stopping() until !any_running() or stop_timeout_us() passed, then
    // kill_remaining().
    void begin_stop();
    void turn_stopping();
    bool any_running() const;
    int64_t stop_timeout_us() const { return drain_timeout_us_; }
    void kill_remaining();

private:
    struct Job;
    struct MemberRun;

    SupervisorEngine::Job& add_job(const ReplicaPlan& plan);
    ReplicaSlot& slot(const Job& j, size_t member) const;
    TrustedSlot& trusted(const Job& j, size_t member) const;
    int64_t in_flight_hint(const Job& j, size_t member) const;
    void set_state(const Job& j, size_t member, ReplicaState st);
    ReplicaState state(const Job& j, size_t member) const;
    void set_health(const Job& j, size_t member, HealthState h);
    void set_trouble(const Job& j, size_t member, MasterTrouble trouble, int32_t detail);
    void log(LogLevel level, const std::string& message);

    int adopt(Job& j, int64_t now);
    void reconfigure(const SupervisorPlan& plan, int64_t now);
    void retire(Job& j, int64_t now);
    void advance_retirements(int64_t now);
    bool start_member(Job& j, size_t member, int64_t now, const std::string* release = nullptr);
    void reap(int64_t now);
    void on_member_exit(Job& j, size_t member, int wait_status, int64_t now);
    void on_crash(Job& j, size_t member, int32_t pid, int wait_status, int64_t now);
    void notice_replacement_requests(bool restarted, int64_t now);
    void remember_failed_release(Job& j, size_t member, int64_t now);
    void check_health(Job& j, int64_t now);
    bool predecessor_running(const Job& j) const;
    int masters_starting() const;
    bool may_start_one() const;
    void start_if_due(Job& j, int64_t now);
    void check_ready(Job& j, int64_t now);
    void become_ready(Job& j, size_t member, int64_t now);
    bool warmup_source(const Job& j, size_t member, SocketSpec* socket, std::string* release) const;
    bool begin_warmup(Job& j, size_t member, int64_t now);
    void advance_warmup(Job& j, size_t member, int64_t now);
    bool begin_url_requests(Job& j, size_t member, int64_t now);
    void request_warmup_url(Job& j, size_t member);
    void advance_url_requests(Job& j, size_t member, int64_t now);
    void finish_warmup(Job& j, size_t member, int64_t now, int64_t scripts, const char* why);
    void complete_warmup(Job& j, size_t member, int64_t now);
    std::unique_ptr<MasterPing> start_script_list(const SocketSpec& socket, const std::string& script,
                                                  int64_t deadline_us);
    std::unique_ptr<MasterPing> start_compile(const SocketSpec& socket, const std::string& script,
                                              const std::vector<std::string>& working_set, int64_t deadline_us,
                                              int64_t now);
    void advance_replacements(int64_t now);
    bool begin_replacement(Job& j, int64_t now);
    void advance_rolling(Job& j, int64_t now);
    void escalate_stops(int64_t now);
    void finish_replacement(Job& j);
    TrustedRelease* release_slot_of(const Job& j) const;
    void record_release_flips();
    TrustedRelease* release_slot_for(const std::string& symlink) const;
    void begin_prewarm(const std::string& symlink, const std::string& target, int64_t now);
    void advance_prewarms(int64_t now);
    void set_prepare_state(const Job& j, PrepareState st);
    std::optional<std::string> read_prepare_request(const Job& j, ReleaseSlot& open, int64_t now);
    void handle_prepare_requests(int64_t now);
    void stop_member(Job& j, size_t member, int64_t now, bool drained = false);
    void start_ping(Job& j, size_t member, bool for_health, const std::string& path,
                    int64_t timeout_us, int64_t now);

    SharedState shared_;
    SupervisorWorld world_;
    Limits limits_;
    int64_t drain_timeout_us_;
    int starting_ = 0;  // masters starting now (may_start_one)
    std::vector<std::unique_ptr<Job>> jobs_;
    std::map<std::string, uint32_t> prepare_seen_;  // release symlink -> prepare_requests seen
    std::map<std::string, std::string> release_seen_;  // release symlink -> the release it named last turn
    struct StuckRequest {
        uint32_t seq;      // the odd counter value seen
        int64_t since_us;  // first seen at
    };
    std::map<std::string, StuckRequest> stuck_requests_;  // release symlink -> unreadable request
};

}  // namespace fpmr
