// The supervisor's state machine (see supervisor_engine.h).
#include "supervisor_engine.h"

#include <algorithm>
#include <set>

#include "release_resolver.h"
#include "replica_reason.h"
#include "fcgi_ping_client.h"
#include "warmup.h"
#include "warmup_urls.h"

namespace fpmr {

namespace {

std::string resolve_release(const std::string& symlink) {
    if (symlink.empty()) return {};
    std::string error;
    return resolve_release_dir(symlink, &error).value_or("");
}


}  // namespace

// One balancer member's master, as the engine runs it (the member itself,
// its slot and sockets, is plan.members[i] of its job).
struct SupervisorEngine::MemberRun {
    MasterIdentity master;  // pid 0 while no master runs
    int64_t started_us = 0;
    std::string release;    // what its master serves (namespace mode)
    bool stopping = false;  // we asked it to stop: its exit is no crash
    // The FastCGI ping in flight to it (readiness while starting, else a
    // health check): advanced each turn, never waited for.
    std::unique_ptr<MasterPing> ping;
    bool ping_for_health = false;
    int64_t ping_started_us = 0;
    int64_t stop_asked_us = 0;  // when it was asked to stop (SIGQUIT)
    int64_t kill_at_us = 0;     // SIGKILL to its group if still running then; 0: none due
    // FpmReplicaHealthCheck bookkeeping.
    int failed_checks = 0;
    int passed_checks = 0;
    int64_t next_check_us = 0;
    bool health_failed = false;  // out of rotation because of its checks
    // Warm-up (FpmReplicaWarmup): after its master answers, before it is
    // ready, it compiles the working set of the master it replaces (or of
    // a sibling), listed by that master. `ping` carries the request.
    // Then it requests the URL paths through httpd, one at a time.
    enum class Warmup { None, Listing, Compiling, RequestingUrls } warmup = Warmup::None;
    int64_t warmup_started_us = 0;
    int64_t warmup_deadline_us = 0;
    std::string warmup_from_release;  // the release of the master whose working set it takes
    int64_t warmup_scripts = 0;       // compiled so far
    std::string warmup_problem;       // the first thing that went wrong, for FPMR00177
    // The URL paths, where and as whom they go, copied from the plan when
    // they begin (a restart may change the plan meanwhile).
    std::vector<std::string> warmup_urls;
    SocketSpec warmup_listener;
    std::string warmup_host;
    size_t warmup_url = 0;            // the URL path being requested
    WarmupToken warmup_token;         // what its URL requests carry

    int32_t pid() const { return master.pid; }
};

// One supervised (or only health-checked) replica. `active` is the member
// that serves; during a replacement the other one starts, and once it is
// ready the active one drains and stops.
struct SupervisorEngine::Job {
    ReplicaPlan plan;               // as the configuration has it; never changed but by a restart
    std::vector<MemberRun> runs;    // one per plan.members
    size_t active = 0;
    int64_t next_start_us = 0;
    bool failed = false;            // crash loop: not restarted until replaced
    bool ever_started = false;
    RestartBackoff backoff;
    uint32_t restart_seen = 0;      // restart_requested value already handled
    // Realpath mode: a deploy tool's prepare has the serving master compile
    // the new release's working set before the flip (the same master
    // serves every release there). `prewarm_ping` carries the request.
    enum class Prewarm { None, Listing, Compiling } prewarm = Prewarm::None;
    std::string prewarm_release;
    int64_t prewarm_deadline_us = 0;
    std::unique_ptr<MasterPing> prewarm_ping;
    bool replace_pending = false;   // a rolling replacement is due
    // Preparing/Prepared: a deploy tool asked for a master on a release
    // before flipping the symlink (status action=prepare); it runs on the
    // spare member, takes no request until the flip, then takes over.
    enum class Phase { Idle, StartingNew, DrainingOld, Preparing, Prepared } phase = Phase::Idle;
    int64_t phase_deadline_us = 0;
    // Removed from the configuration by a restart of httpd: its masters stop
    // once old requests had time to finish, then the job is dropped.
    bool retiring = false;
    int64_t retire_after_us = 0;     // not before (children of the old generation may still send)
    int64_t retire_deadline_us = 0;  // stop even with requests in flight
    // Namespace mode: a release whose replacement failed is not tried again
    // before this time (no hot loop on a broken deploy).
    std::string failed_release;
    int64_t failed_release_retry_us = 0;

    bool namespace_mode() const { return !plan.request.stable_path.empty(); }
    const std::string& name() const { return plan.name(); }
    const char* name_c() const { return plan.name().c_str(); }
    const char* vhost_c() const { return plan.vhost.c_str(); }
    size_t spare() const { return runs.size() > 1 ? 1 - active : active; }
    MemberRun& current() { return runs[active]; }
    bool rolling() const { return phase != Phase::Idle && phase != Phase::Prepared; }
};

SupervisorEngine::SupervisorEngine(const SupervisorPlan& plan, const SharedState& shared,
                                   SupervisorWorld world, Limits limits)
    : shared_(shared), world_(world), limits_(limits), drain_timeout_us_(plan.drain_timeout_us) {
    for (const ReplicaPlan& r : plan.replicas) add_job(r);
}

SupervisorEngine::~SupervisorEngine() = default;

SupervisorEngine::Job& SupervisorEngine::add_job(const ReplicaPlan& plan) {
    auto job = std::make_unique<Job>();
    job->plan = plan;
    job->runs.resize(plan.members.size());
    job->restart_seen = slot(*job, 0).restart_requested.load();
    // A token a dead supervisor left behind steers nothing any more.
    for (size_t m = 0; m < job->runs.size(); ++m) withdraw_warmup_token(trusted(*job, m));
    jobs_.push_back(std::move(job));
    return *jobs_.back();
}

ReplicaSlot& SupervisorEngine::slot(const Job& j, size_t member) const {
    return shared_.slot(j.plan.members[member].slot);
}

TrustedSlot& SupervisorEngine::trusted(const Job& j, size_t member) const {
    return shared_.trusted_rw(j.plan.members[member].slot);
}

// In-flight requests on a member as httpd's children count them. A child
// can write any value there, so it only times a stop this process decided
// anyway (never earlier than "empty", never later than the drain timeout);
// a negative count reads as empty.
int64_t SupervisorEngine::in_flight_hint(const Job& j, size_t member) const {
    int64_t n = slot(j, member).in_flight.load();
    return n < 0 ? 0 : n;
}

void SupervisorEngine::set_state(const Job& j, size_t member, ReplicaState st) {
    trusted(j, member).lifecycle.store(static_cast<uint32_t>(st));
}

ReplicaState SupervisorEngine::state(const Job& j, size_t member) const {
    return static_cast<ReplicaState>(trusted(j, member).lifecycle.load());
}

void SupervisorEngine::set_health(const Job& j, size_t member, HealthState h) {
    trusted(j, member).health.store(static_cast<uint32_t>(h));
}

void SupervisorEngine::set_trouble(const Job& j, size_t member, MasterTrouble trouble, int32_t detail) {
    TrustedSlot& t = trusted(j, member);
    t.trouble_detail.store(detail);
    t.trouble.store(static_cast<uint32_t>(trouble));
}

void SupervisorEngine::log(LogLevel level, const std::string& message) {
    world_.log.write(level, message);
}

int SupervisorEngine::adopt_running_masters() {
    int adopted = 0;
    int64_t now = world_.clock.now_us();
    for (auto& j : jobs_) adopted += adopt(*j, now);
    if (adopted) {
        log(LogLevel::Notice, format_text(FPMRNO(00057) "the replica supervisor took over %d running "
                                          "php-fpm masters", adopted));
    }
    return adopted;
}

// After a supervisor died, its successor finds the masters it left in the
// trusted block: the serving one (ready, else the primary) stays and is
// watched; any other (a replacement or a draining master) is stopped. A
// recorded master is taken over only if the process with its pid is still
// that master (same start time, its own session): a pid reused since is
// somebody else's process and is left alone.
int SupervisorEngine::adopt(Job& j, int64_t now) {
    if (!j.plan.supervised) return 0;
    int keep = -1;
    std::vector<bool> alive(j.runs.size());
    for (size_t i = 0; i < j.runs.size(); ++i) {
        TrustedSlot& t = trusted(j, i);
        MasterIdentity recorded{t.pid.load(), t.pid_start_time.load()};
        if (recorded.pid == 0) continue;
        if (!world_.processes.adopt(recorded)) {
            log(LogLevel::Warning,
                format_text(FPMRNO(00062) "replica '%s' of %s: the recorded master pid %d is not the "
                            "master that was started there (gone, or the pid was reused): not taken "
                            "over", j.name_c(), j.vhost_c(), static_cast<int>(recorded.pid)));
            t.pid.store(0);
            continue;
        }
        alive[i] = true;
        j.runs[i].master = recorded;
        if (keep < 0 || (state(j, i) == ReplicaState::Ready && state(j, keep) != ReplicaState::Ready)) {
            keep = static_cast<int>(i);
        }
    }
    int adopted = 0;
    for (size_t i = 0; i < j.runs.size(); ++i) {
        if (!alive[i]) continue;
        MemberRun& m = j.runs[i];
        m.started_us = now;
        m.release = read_slot_release(trusted(j, i)).value_or("");
        ++adopted;
        if (static_cast<int>(i) != keep) stop_member(j, i, now);
    }
    if (keep >= 0) {
        j.active = static_cast<size_t>(keep);
        j.ever_started = true;
    }
    return adopted;
}

void SupervisorEngine::on_httpd_restart(const std::optional<SupervisorPlan>& plan) {
    int64_t now = world_.clock.now_us();
    if (plan) {
        reconfigure(*plan, now);
    } else {
        log(LogLevel::Error, FPMRNO(00054) "the replica supervisor received no configuration for this "
                             "restart of httpd; its replicas keep their previous settings");
    }
    notice_replacement_requests(true, now);
}

// httpd restarted: compare its new configuration with what runs.
void SupervisorEngine::reconfigure(const SupervisorPlan& plan, int64_t now) {
    drain_timeout_us_ = plan.drain_timeout_us;
    std::vector<Job*> live;  // the replicas not retiring
    std::vector<ReplicaPlan> running;
    for (auto& j : jobs_) {
        if (j->retiring) continue;
        live.push_back(j.get());
        running.push_back(j->plan);
    }
    PlanChanges changes = compare_plans(running, plan.replicas);
    // A replica that stays (same members) takes its new settings from its
    // next start, which this restart is about to cause.
    for (auto [ri, wi] : changes.kept) live[ri]->plan = plan.replicas[wi];
    for (auto [ri, wi] : changes.switched) {
        Job& j = *live[ri];
        log(LogLevel::Warning,
            format_text(FPMRNO(00052) "replica '%s' of %s is now %s: the running one is left as it is "
                        "until httpd is stopped and started", j.name_c(), j.vhost_c(),
                        plan.replicas[wi].supervised ? "supervised" : "no longer supervised"));
    }
    for (size_t ri : changes.removed) retire(*live[ri], now);
    for (size_t wi : changes.added) add_job(plan.replicas[wi]);
    log(LogLevel::Notice,
        format_text(FPMRNO(00051) "new configuration: %lu replicas kept (replaced one by one), %lu "
                    "added, %lu removed, %lu left as they were (supervision switched)",
                    static_cast<unsigned long>(changes.kept.size()),
                    static_cast<unsigned long>(changes.added.size()),
                    static_cast<unsigned long>(changes.removed.size()),
                    static_cast<unsigned long>(changes.switched.size())));
}

void SupervisorEngine::retire(Job& j, int64_t now) {
    j.retiring = true;
    j.replace_pending = false;
    if (j.phase == Job::Phase::Preparing || j.phase == Job::Phase::Prepared) {
        set_prepare_state(j, PrepareState::Failed);
    }
    j.phase = Job::Phase::Idle;
    j.retire_after_us = now + kRetireGraceUs;
    j.retire_deadline_us = now + std::max(j.plan.drain_timeout_us, kRetireGraceUs);
    for (size_t i = 0; i < j.runs.size(); ++i) {
        if (j.runs[i].pid() && !j.runs[i].stopping) set_state(j, i, ReplicaState::Draining);
    }
}

// Removed replicas: each master stops once it is empty (or at the drain
// timeout); a replica with no master left is dropped.
void SupervisorEngine::advance_retirements(int64_t now) {
    for (auto it = jobs_.begin(); it != jobs_.end();) {
        Job& j = **it;
        if (!j.retiring) {
            ++it;
            continue;
        }
        bool running = false;
        for (size_t i = 0; i < j.runs.size(); ++i) {
            MemberRun& m = j.runs[i];
            if (!m.pid()) continue;
            running = true;
            if (!j.plan.supervised || m.stopping || now < j.retire_after_us) continue;
            if (in_flight_hint(j, i) == 0 || now >= j.retire_deadline_us) stop_member(j, i, now, true);
        }
        if (running && j.plan.supervised) {
            ++it;
            continue;
        }
        log(LogLevel::Notice,
            format_text(FPMRNO(00053) "replica '%s' of %s is no longer configured: %s", j.name_c(),
                        j.vhost_c(), j.plan.supervised ? "its masters stopped" : "no longer checked"));
        it = jobs_.erase(it);
    }
}

bool SupervisorEngine::start_member(Job& j, size_t member, int64_t now, const std::string* release) {
    SpawnRequest request = j.plan.request;
    request.release_dir = release ? *release : resolve_release(j.plan.release_symlink);
    if (j.namespace_mode() && request.release_dir.empty()) return false;  // dangling: wait
    const MemberPlan& mp = j.plan.members[member];
    request.replica.socket = mp.socket;
    request.replica.status = mp.status;
    std::vector<SocketSpec> sockets{mp.socket};
    if (mp.status) sockets.push_back(*mp.status);
    if (request.replica.probe) sockets.push_back(*request.replica.probe);
    MemberRun& m = j.runs[member];
    m.release = request.release_dir;
    write_slot_release(trusted(j, member), m.release);
    std::optional<MasterIdentity> started = world_.processes.spawn(plan_spawn(request), sockets);
    if (!started) return false;
    m.master = *started;
    m.started_us = now;
    m.stopping = false;
    m.kill_at_us = 0;
    m.failed_checks = m.passed_checks = 0;
    m.health_failed = false;
    m.ping.reset();
    TrustedSlot& t = trusted(j, member);
    t.pid_start_time.store(started->start_time);
    t.pid.store(started->pid);
    slot(j, member).retry_at_us.store(0);
    set_health(j, member, HealthState::Unknown);
    set_trouble(j, member, MasterTrouble::None, 0);
    set_state(j, member, ReplicaState::Starting);
    ++starting_;
    log(LogLevel::Notice,
        format_text(FPMRNO(00029) "started replica '%s' of %s on %s: pid %d%s%s", j.name_c(), j.vhost_c(),
                    mp.socket.text().c_str(), static_cast<int>(started->pid),
                    request.release_dir.empty() ? "" : ", release ", request.release_dir.c_str()));
    return true;
}

void SupervisorEngine::reap(int64_t now) {
    for (const MasterExit& exit : world_.processes.collect_exits()) {
        for (auto& j : jobs_) {
            for (size_t i = 0; i < j->runs.size(); ++i) {
                if (j->runs[i].pid() == exit.pid) on_member_exit(*j, i, exit.wait_status, now);
            }
        }
    }
}

void SupervisorEngine::on_member_exit(Job& j, size_t member, int wait_status, int64_t now) {
    MemberRun& m = j.runs[member];
    int32_t pid = m.pid();
    m.master = MasterIdentity{};
    m.kill_at_us = 0;
    m.ping.reset();
    trusted(j, member).pid.store(0);
    trusted(j, member).pid_start_time.store(0);
    bool draining_old = j.phase == Job::Phase::DrainingOld && member == j.active;
    if (m.stopping || draining_old) {
        if (!m.stopping) {
            // Died before it was asked to stop: its successor is ready and
            // serves already, so this ends the replacement, not a crash.
            log(LogLevel::Warning,
                format_text(FPMRNO(00175) "replica '%s' of %s: the old master (pid %d) %s while its "
                            "requests drained; the new master serves", j.name_c(), j.vhost_c(),
                            static_cast<int>(pid), describe_wait_status(wait_status).c_str()));
        }
        set_state(j, member, ReplicaState::Stopped);
        if (draining_old) finish_replacement(j);
        return;
    }
    on_crash(j, member, pid, wait_status, now);
}

void SupervisorEngine::on_crash(Job& j, size_t member, int32_t pid, int wait_status, int64_t now) {
    std::string how = describe_wait_status(wait_status);
    if (member != j.active) {
        // The replacement died before taking over: keep the current master.
        if (j.phase == Job::Phase::Preparing || j.phase == Job::Phase::Prepared) {
            set_prepare_state(j, PrepareState::Failed);
        }
        set_trouble(j, member, MasterTrouble::ReplacementFailed, wait_status);
        set_state(j, member, ReplicaState::Stopped);
        j.phase = Job::Phase::Idle;
        j.replace_pending = false;
        remember_failed_release(j, member, now);
        log(LogLevel::Error,
            format_text(FPMRNO(00037) "replacement of replica '%s' of %s failed: its new master (pid %d) "
                        "%s; the current master keeps serving", j.name_c(), j.vhost_c(),
                        static_cast<int>(pid), how.c_str()));
        return;
    }
    int64_t again = j.backoff.on_exit(now, now - j.runs[member].started_us);
    if (again < 0) {
        set_trouble(j, member, MasterTrouble::CrashLoop, wait_status);
        j.failed = true;
        set_state(j, member, ReplicaState::Failed);
        log(LogLevel::Error,
            format_text(FPMRNO(00027) "replica '%s' of %s (pid %d) %s; it crashed %d times within a "
                        "minute: marked failed, not restarted", j.name_c(), j.vhost_c(),
                        static_cast<int>(pid), how.c_str(), j.backoff.crashes()));
        return;
    }
    j.next_start_us = again;
    // A master killed for failing its checks keeps that as its trouble.
    if (!j.runs[member].health_failed) set_trouble(j, member, MasterTrouble::Crashed, wait_status);
    set_state(j, member, ReplicaState::Starting);
    log(LogLevel::Warning,
        format_text(FPMRNO(00028) "replica '%s' of %s (pid %d) %s; restarting it in %lldms", j.name_c(),
                    j.vhost_c(), static_cast<int>(pid), how.c_str(),
                    static_cast<long long>((again - now) / 1000)));
}

// A restart of httpd replaces every replica; the status handler's restart
// action replaces one; in namespace mode, a flipped release symlink
// replaces every replica serving another release.
void SupervisorEngine::notice_replacement_requests(bool restarted, int64_t now) {
    for (auto& jp : jobs_) {
        Job& j = *jp;
        if (!j.plan.supervised || j.retiring) continue;
        uint32_t requested = slot(j, 0).restart_requested.load();
        // A replica that never started (one this restart added) has
        // nothing to replace.
        if ((restarted && j.ever_started) || requested != j.restart_seen) j.replace_pending = true;
        j.restart_seen = requested;
        if (!j.namespace_mode() || !j.current().pid() ||
            (j.phase != Job::Phase::Idle && j.phase != Job::Phase::Prepared)) {
            continue;
        }
        std::string wanted = resolve_release(j.plan.release_symlink);
        if (wanted.empty() || wanted == j.current().release) continue;
        if (wanted == j.failed_release && now < j.failed_release_retry_us) continue;
        j.replace_pending = true;
    }
}

void SupervisorEngine::remember_failed_release(Job& j, size_t member, int64_t now) {
    if (!j.namespace_mode()) return;
    const std::string& release = j.runs[member].release;
    if (TrustedRelease* rs = release_slot_of(j)) rs->failed_release_hash.store(release_hash(release));
    j.failed_release = release;
    j.failed_release_retry_us = now + kFailedReleaseRetryUs;
    log(LogLevel::Error,
        format_text(FPMRNO(00043) "replica '%s' of %s cannot serve release %s; it keeps serving %s and "
                    "tries again in %ds", j.name_c(), j.vhost_c(), release.c_str(),
                    j.current().release.c_str(), static_cast<int>(kFailedReleaseRetryUs / 1000000)));
}

void SupervisorEngine::start_ping(Job& j, size_t member, bool for_health, const std::string& path,
                                  int64_t timeout_us, int64_t now) {
    const MemberPlan& mp = j.plan.members[member];
    MemberRun& m = j.runs[member];
    m.ping = world_.pings.start(mp.status ? *mp.status : mp.socket, path, now + timeout_us);
    m.ping_for_health = for_health;
    m.ping_started_us = now;
}

// FpmReplicaHealthCheck: `fails` missed checks in a row take a member out of
// rotation (failing); `passes` answered ones bring it back. As
// mod_proxy_hcheck, a check passes on a 2xx or 3xx answer only (a /ping that
// answers 500 is a failing replica). A supervised master that fails its
// checks (hung, say) is killed and restarted.
void SupervisorEngine::check_health(Job& j, int64_t now) {
    if (!j.plan.health || j.retiring) {
        for (MemberRun& m : j.runs) {
            if (m.ping && m.ping_for_health) m.ping.reset();
        }
        return;
    }
    const HealthCheckSpec& h = *j.plan.health;
    for (size_t i = 0; i < j.runs.size(); ++i) {
        MemberRun& m = j.runs[i];
        if ((j.plan.supervised && (!m.pid() || m.stopping)) || state(j, i) != ReplicaState::Ready) {
            if (m.ping && m.ping_for_health) m.ping.reset();
            continue;
        }
        if (!m.ping) {
            if (now < m.next_check_us) continue;
            start_ping(j, i, true, h.path, h.timeout_us, now);
        }
        MasterPing::Result result = m.ping->advance(world_.clock.now_us());
        if (result == MasterPing::Result::Pending) continue;
        int64_t ended = world_.clock.now_us();
        trusted(j, i).check_latency_us.store(ended - m.ping_started_us);
        m.next_check_us = ended + h.interval_us;
        int status = m.ping->http_status();
        bool ok = result == MasterPing::Result::Answered && status >= 200 && status < 400;
        m.ping.reset();
        std::string socket = j.plan.members[i].socket.text();
        if (ok) {
            m.failed_checks = 0;
            ++m.passed_checks;
            if (!m.health_failed) {
                set_health(j, i, HealthState::Passing);
            } else if (m.passed_checks >= h.passes) {
                m.health_failed = false;
                set_trouble(j, i, MasterTrouble::None, 0);
                set_health(j, i, HealthState::Passing);
                slot(j, i).retry_at_us.store(0);
                log(LogLevel::Notice,
                    format_text(FPMRNO(00045) "replica '%s' of %s on %s passes its health checks again: "
                                "back in rotation", j.name_c(), j.vhost_c(), socket.c_str()));
            }
            continue;
        }
        m.passed_checks = 0;
        ++m.failed_checks;
        if (!m.health_failed && m.failed_checks >= h.fails) {
            m.health_failed = true;
            set_trouble(j, i, MasterTrouble::HealthChecks, result == MasterPing::Result::Answered ? status : 0);
            set_health(j, i, HealthState::Failing);
            log(LogLevel::Error,
                format_text(FPMRNO(00044) "replica '%s' of %s on %s failed %d health checks in a row: "
                            "out of rotation%s", j.name_c(), j.vhost_c(), socket.c_str(), m.failed_checks,
                            j.plan.supervised ? "; restarting it" : ""));
            if (j.plan.supervised && m.pid()) world_.processes.kill_with_workers(m.pid());
        }
    }
}

// A replica that moved to other sockets starts only once its old self has
// stopped: the two may share a status or probe socket, which php-fpm will
// not bind twice (and a ping there would reach the old master).
bool SupervisorEngine::predecessor_running(const Job& j) const {
    for (const auto& k : jobs_) {
        if (k.get() != &j && k->retiring && k->plan.vhost == j.plan.vhost && k->name() == j.name()) {
            return true;
        }
    }
    return false;
}

int SupervisorEngine::masters_starting() const {
    int starting = 0;
    for (const auto& j : jobs_) {
        for (size_t i = 0; i < j->runs.size(); ++i) {
            const MemberRun& m = j->runs[i];
            if (m.pid() && !m.stopping && state(*j, i) == ReplicaState::Starting) ++starting;
        }
    }
    return starting;
}

// Counted once where a turn's starts begin (starting_), and kept up by
// start_member: asking every member for every job would be quadratic in
// the number of replicas, hundreds on a shared host.
bool SupervisorEngine::may_start_one() const { return starting_ < limits_.max_starting; }

void SupervisorEngine::start_if_due(Job& j, int64_t now) {
    if (!j.plan.supervised || j.retiring || predecessor_running(j)) return;
    MemberRun& m = j.current();
    if (m.pid() || j.failed || now < j.next_start_us || !may_start_one()) return;
    if (!start_member(j, j.active, now)) {
        j.next_start_us = now + RestartBackoff::kFirstDelayUs;
        return;
    }
    if (j.ever_started) trusted(j, 0).restarts.fetch_add(1);
    j.ever_started = true;
}

void SupervisorEngine::check_ready(Job& j, int64_t now) {
    for (size_t i = 0; i < j.runs.size(); ++i) {
        MemberRun& m = j.runs[i];
        if (!m.pid() || m.stopping || state(j, i) != ReplicaState::Starting) {
            if (m.ping && !m.ping_for_health) m.ping.reset();
            if (m.warmup == MemberRun::Warmup::RequestingUrls) withdraw_warmup_token(trusted(j, i));
            m.warmup = MemberRun::Warmup::None;
            continue;
        }
        if (m.warmup != MemberRun::Warmup::None) {
            advance_warmup(j, i, now);
            continue;
        }
        if (!m.ping || m.ping_for_health) start_ping(j, i, false, "/ping", kReadyPingUs, now);
        MasterPing::Result result = m.ping->advance(world_.clock.now_us());
        if (result == MasterPing::Result::Pending) continue;
        m.ping.reset();
        if (result != MasterPing::Result::Answered) continue;
        if (!begin_warmup(j, i, now)) become_ready(j, i, now);
    }
}

// The master of member `i` answers: it takes its place (a prepared master
// takes none yet).
void SupervisorEngine::become_ready(Job& j, size_t i, int64_t now) {
    MemberRun& m = j.runs[i];
    if (i != j.active && j.phase == Job::Phase::Preparing) {
        // Ready on the prepared release; no request is pinned to it until
        // the symlink names it.
        set_state(j, i, ReplicaState::Ready);
        j.phase = Job::Phase::Prepared;
        set_prepare_state(j, PrepareState::Ready);
        log(LogLevel::Notice,
            format_text(FPMRNO(00048) "replica '%s' of %s: a master on release %s (pid %d) is ready "
                        "for the deploy", j.name_c(), j.vhost_c(), m.release.c_str(),
                        static_cast<int>(m.pid())));
        return;
    }
    if (i != j.active && j.phase == Job::Phase::StartingNew) {
        // The replacement answers: it takes new requests, the old master
        // gets none from now on and stops once it is empty.
        set_state(j, i, ReplicaState::Ready);
        set_state(j, j.active, ReplicaState::Draining);
        j.phase = Job::Phase::DrainingOld;
        j.phase_deadline_us = now + j.plan.drain_timeout_us;
        log(LogLevel::Notice,
            format_text(FPMRNO(00038) "replica '%s' of %s: new master (pid %d) ready, draining the "
                        "old one (pid %d)", j.name_c(), j.vhost_c(), static_cast<int>(m.pid()),
                        static_cast<int>(j.current().pid())));
        return;
    }
    set_state(j, i, ReplicaState::Ready);
    log(LogLevel::Notice, format_text(FPMRNO(00030) "replica '%s' of %s (pid %d) is ready", j.name_c(),
                                      j.vhost_c(), static_cast<int>(m.pid())));
}

// Whose working set a new master on member `i` compiles: the master it
// replaces (or prepares to replace), else a ready sibling of its vhost.
bool SupervisorEngine::warmup_source(const Job& j, size_t i, SocketSpec* socket, std::string* release) const {
    auto serving = [&](const Job& k, size_t mi) {
        const MemberRun& m = k.runs[mi];
        return m.pid() && !m.stopping && state(k, mi) == ReplicaState::Ready;
    };
    if (i != j.active && serving(j, j.active)) {
        *socket = j.plan.members[j.active].socket;
        *release = j.runs[j.active].release;
        return true;
    }
    for (const auto& k : jobs_) {
        if (k.get() == &j || k->retiring || k->plan.vhost != j.plan.vhost) continue;
        if (serving(*k, k->active)) {
            *socket = k->plan.members[k->active].socket;
            *release = k->runs[k->active].release;
            return true;
        }
    }
    return false;
}

// The first master of a vhost is not warmed: there is no working set to
// take, and nobody else to serve its requests while it would wait.
bool SupervisorEngine::begin_warmup(Job& j, size_t i, int64_t now) {
    const WarmupSpec& spec = j.plan.warmup;
    if (!spec.enabled) return false;
    SocketSpec source;
    MemberRun& m = j.runs[i];
    if (!warmup_source(j, i, &source, &m.warmup_from_release)) return false;
    m.warmup_started_us = now;
    m.warmup_deadline_us = now + spec.timeout_us;
    m.warmup_scripts = 0;
    m.warmup_problem.clear();
    // A replacement's start deadline leaves its warm-up the time it may take.
    if (j.phase == Job::Phase::StartingNew || j.phase == Job::Phase::Preparing) {
        j.phase_deadline_us = std::max(j.phase_deadline_us, m.warmup_deadline_us + kReadyPingUs);
    }
    m.ping_for_health = false;
    if (!world_.pings.script_present(spec.script)) {
        if (begin_url_requests(j, i, now)) return true;
        if (m.warmup_problem.empty()) return false;
        complete_warmup(j, i, now);  // nothing to do after all, but say why
        return true;
    }
    m.warmup = MemberRun::Warmup::Listing;
    m.ping = start_script_list(source, spec.script, m.warmup_deadline_us);
    return true;
}

// The warm-up script's two requests, for a new master's warm-up and a
// deploy's prewarm alike: its list of cached scripts, answered by
// `deadline_us`; and the compile of `working_set`, whose own work the
// script stops at the deadline, its answer given a ping's time more.
std::unique_ptr<MasterPing> SupervisorEngine::start_script_list(const SocketSpec& socket, const std::string& script,
                                                                int64_t deadline_us) {
    return world_.pings.start_request(socket, warmup_list_request(script), deadline_us,
                                      FcgiPingClient::kMaxWarmupReplyBytes);
}

std::unique_ptr<MasterPing> SupervisorEngine::start_compile(const SocketSpec& socket, const std::string& script,
                                                            const std::vector<std::string>& working_set,
                                                            int64_t deadline_us, int64_t now) {
    int64_t left_ms = std::max<int64_t>(1, (deadline_us - now) / 1000);
    return world_.pings.start_request(socket, warmup_compile_request(script, working_set, left_ms),
                                      deadline_us + kReadyPingUs, FcgiPingClient::kMaxWarmupReplyBytes);
}

// After the working set: each URL path once, through httpd, steered to the
// new master by a one-time token in the trusted block. False when there is
// none to request (or no time left).
bool SupervisorEngine::begin_url_requests(Job& j, size_t i, int64_t now) {
    MemberRun& m = j.runs[i];
    if (j.plan.warmup.urls.empty()) return false;
    if (i != j.active && j.phase == Job::Phase::Preparing) {
        // A deploy's master on a release not live yet: requests through
        // httpd would be pinned to the live one, its rewrite rules and
        // files. It compiles the working set only.
        return false;
    }
    if (!j.plan.warmup_listener) {
        if (m.warmup_problem.empty()) m.warmup_problem = "httpd listens on no address of its vhost for its URL paths";
        return false;
    }
    if (now >= m.warmup_deadline_us) {
        if (m.warmup_problem.empty()) m.warmup_problem = "no time was left for its URL paths";
        return false;
    }
    m.warmup_token = WarmupToken{world_.random.next(), world_.random.next()};
    if (m.warmup_token.empty()) {  // the kernel gave no random numbers
        if (m.warmup_problem.empty()) m.warmup_problem = "no random token for its URL paths";
        return false;
    }
    publish_warmup_token(trusted(j, i), m.warmup_token);
    m.warmup_urls = j.plan.warmup.urls;
    m.warmup_listener = *j.plan.warmup_listener;
    m.warmup_host = j.plan.warmup_host;
    m.warmup = MemberRun::Warmup::RequestingUrls;
    m.warmup_url = 0;
    request_warmup_url(j, i);
    return true;
}

void SupervisorEngine::request_warmup_url(Job& j, size_t i) {
    MemberRun& m = j.runs[i];
    m.ping = world_.pings.start_http(
        m.warmup_listener,
        warmup_url_request(m.warmup_host, m.warmup_urls[m.warmup_url],
                           warmup_header_value(j.plan.members[i].slot, m.warmup_token)),
        m.warmup_deadline_us);
}

void SupervisorEngine::advance_url_requests(Job& j, size_t i, int64_t now) {
    MemberRun& m = j.runs[i];
    const std::string url = m.warmup_urls[m.warmup_url];
    MasterPing::Result result = m.ping->advance(world_.clock.now_us());
    if (result == MasterPing::Result::Pending) return;
    int status = m.ping->http_status();
    m.ping.reset();
    if (result != MasterPing::Result::Answered) {
        finish_warmup(j, i, now, -1, format_text("GET %s had no answer in time", url.c_str()).c_str());
        return;
    }
    // An application's own error is worth a line, not the end of warm-up.
    if ((status < 200 || status >= 400) && m.warmup_problem.empty()) {
        m.warmup_problem = format_text("GET %s answered %d", url.c_str(), status);
    }
    if (++m.warmup_url < m.warmup_urls.size()) {
        request_warmup_url(j, i);
        return;
    }
    finish_warmup(j, i, now, -1, nullptr);
}

void SupervisorEngine::advance_warmup(Job& j, size_t i, int64_t now) {
    MemberRun& m = j.runs[i];
    const WarmupSpec& spec = j.plan.warmup;
    if (!m.ping) {
        finish_warmup(j, i, now, -1, "it lost its request");
        return;
    }
    if (m.warmup == MemberRun::Warmup::RequestingUrls) {
        advance_url_requests(j, i, now);
        return;
    }
    MasterPing::Result result = m.ping->advance(world_.clock.now_us());
    if (result == MasterPing::Result::Pending) return;
    int status = m.ping->http_status();
    std::string body = result == MasterPing::Result::Answered ? m.ping->body() : std::string();
    m.ping.reset();
    if (result != MasterPing::Result::Answered) {
        finish_warmup(j, i, now, -1, m.warmup == MemberRun::Warmup::Listing
                                         ? "the master it replaces did not list its scripts in time"
                                         : "it did not compile them in time");
        return;
    }
    if (status == 409) {  // opcache off or its API restricted: nothing to warm
        finish_warmup(j, i, now, 0, nullptr);
        return;
    }
    if (status < 200 || status >= 300) {
        finish_warmup(j, i, now, -1, format_text("the warm-up script %s answered %d", spec.script.c_str(),
                                                 status).c_str());
        return;
    }
    if (m.warmup == MemberRun::Warmup::Listing) {
        ScriptList listed = parse_script_list(body);
        // No release on either side: both masters serve the same files.
        std::vector<std::string> working_set =
            j.namespace_mode() || !m.warmup_from_release.empty() || !m.release.empty()
                ? map_working_set(listed.scripts, m.warmup_from_release, m.release,
                                  j.plan.request.stable_path, SharedScripts::kKeep)
                : std::move(listed.scripts);
        // The warm-up script compiles itself by answering.
        working_set.erase(std::remove(working_set.begin(), working_set.end(), spec.script), working_set.end());
        if (working_set.empty()) {
            finish_warmup(j, i, now, 0, nullptr);
            return;
        }
        m.warmup = MemberRun::Warmup::Compiling;
        m.ping = start_compile(j.plan.members[i].socket, spec.script, working_set, m.warmup_deadline_us, now);
        return;
    }
    std::optional<CompileResult> compiled = parse_compile_answer(body);
    if (!compiled) {
        finish_warmup(j, i, now, -1, "its compile answer could not be read");
        return;
    }
    finish_warmup(j, i, now, compiled->compiled, compiled->timed_out ? "it ran out of time" : nullptr);
}

// Ends a step of member `i`'s warm-up: the working set's with `scripts`
// compiled (-1: none; `why` when it failed), then the URL paths if there
// are any, and at the end the master becomes ready whatever happened.
void SupervisorEngine::finish_warmup(Job& j, size_t i, int64_t now, int64_t scripts, const char* why) {
    MemberRun& m = j.runs[i];
    m.ping.reset();
    if (scripts > 0) m.warmup_scripts = scripts;
    if (why && m.warmup_problem.empty()) m.warmup_problem = why;
    const bool scripts_step = m.warmup == MemberRun::Warmup::Listing || m.warmup == MemberRun::Warmup::Compiling;
    if (m.warmup == MemberRun::Warmup::RequestingUrls) withdraw_warmup_token(trusted(j, i));
    if (scripts_step && begin_url_requests(j, i, now)) return;
    complete_warmup(j, i, now);
}

// The warm-up is over: its figures for the status document, one line if
// anything went wrong, and the master takes requests (SPEC: a failed
// warm-up leaves it ready).
void SupervisorEngine::complete_warmup(Job& j, size_t i, int64_t now) {
    MemberRun& m = j.runs[i];
    m.warmup = MemberRun::Warmup::None;
    int64_t took = world_.clock.now_us() - m.warmup_started_us;
    TrustedSlot& t = trusted(j, i);
    t.warmup_scripts.store(m.warmup_scripts);
    t.warmup_us.store(took);
    if (!m.warmup_problem.empty()) {
        log(LogLevel::Warning,
            format_text(FPMRNO(00177) "replica '%s' of %s: the warm-up of master pid %d stopped after "
                        "%lld ms (%s); it takes requests now", j.name_c(), j.vhost_c(),
                        static_cast<int>(m.pid()), static_cast<long long>(took / 1000),
                        m.warmup_problem.c_str()));
    }
    become_ready(j, i, now);
}

// Replacements run one replica at a time per vhost (at most one master more
// than configured there, so a site's capacity never dips and its memory
// never doubles), many vhosts at once, within the bound on masters starting
// together. Within a vhost a prepared master is already the one extra: its
// replica goes first.
void SupervisorEngine::advance_replacements(int64_t now) {
    std::set<std::string> busy;  // vhosts with a replacement running
    for (auto& j : jobs_) {
        if (!j->rolling()) continue;
        advance_rolling(*j, now);
        if (j->rolling()) busy.insert(j->plan.vhost);
    }
    std::set<std::string> prepared;  // vhosts holding a prepared master
    for (auto& j : jobs_) {
        if (j->phase == Job::Phase::Prepared) prepared.insert(j->plan.vhost);
    }
    for (auto& jp : jobs_) {
        Job& j = *jp;
        if (!j.plan.supervised || !j.replace_pending || busy.count(j.plan.vhost)) continue;
        if (prepared.count(j.plan.vhost) && j.phase != Job::Phase::Prepared) continue;
        if (begin_replacement(j, now)) busy.insert(j.plan.vhost);
        if (j.phase != Job::Phase::Prepared) prepared.erase(j.plan.vhost);
    }
}

// Starts the replacement `j` is waiting for; true when it is now rolling.
bool SupervisorEngine::begin_replacement(Job& j, int64_t now) {
    MemberRun& cur = j.current();
    if (j.phase == Job::Phase::Prepared) {
        j.replace_pending = false;
        if (j.runs[j.spare()].pid() &&
            j.runs[j.spare()].release == resolve_release(j.plan.release_symlink)) {
            // The symlink now names the prepared release: its master takes
            // over, the current one drains.
            set_state(j, j.active, ReplicaState::Draining);
            j.phase = Job::Phase::DrainingOld;
            j.phase_deadline_us = now + j.plan.drain_timeout_us;
            set_prepare_state(j, PrepareState::None);
            return true;
        }
        stop_member(j, j.spare(), now);  // prepared for something else
        set_prepare_state(j, PrepareState::None);
        j.phase = Job::Phase::Idle;
        j.replace_pending = true;
        return false;
    }
    if (j.failed || !cur.pid() || state(j, j.active) != ReplicaState::Ready) {
        // Not serving: a plain (re)start is the replacement.
        j.replace_pending = false;
        j.failed = false;
        j.backoff.reset();
        if (cur.pid()) stop_member(j, j.active, now);
        j.next_start_us = now;
        return false;
    }
    if (j.runs.size() < 2) {
        // A tcp replica has no alternate socket: restart in place.
        j.replace_pending = false;
        stop_member(j, j.active, now);
        j.next_start_us = now;
        return false;
    }
    // Stays pending while the spare member's last master is still exiting
    // (a cancelled prepare: both would bind its socket) or too many masters
    // are starting: its turn comes.
    if (j.runs[j.spare()].pid() || !may_start_one()) return false;
    j.replace_pending = false;
    if (!start_member(j, j.spare(), now)) return false;
    j.phase = Job::Phase::StartingNew;
    j.phase_deadline_us = now + kStartTimeoutUs;
    return true;
}

// A replacement or preparation under way: its deadlines, and the old
// master's stop once it is empty.
void SupervisorEngine::advance_rolling(Job& j, int64_t now) {
    if (j.phase == Job::Phase::Preparing && now >= j.phase_deadline_us) {
        log(LogLevel::Error,
            format_text(FPMRNO(00049) "replica '%s' of %s: the master prepared on release %s did not "
                        "answer within %ds", j.name_c(), j.vhost_c(), j.runs[j.spare()].release.c_str(),
                        static_cast<int>(kStartTimeoutUs / 1000000)));
        stop_member(j, j.spare(), now);
        set_prepare_state(j, PrepareState::Failed);
        j.phase = Job::Phase::Idle;
    } else if (j.phase == Job::Phase::StartingNew && now >= j.phase_deadline_us) {
        log(LogLevel::Error,
            format_text(FPMRNO(00039) "replacement of replica '%s' of %s did not answer within %ds; the "
                        "current master keeps serving", j.name_c(), j.vhost_c(),
                        static_cast<int>(kStartTimeoutUs / 1000000)));
        set_trouble(j, j.spare(), MasterTrouble::StartTimeout, 0);
        remember_failed_release(j, j.spare(), now);
        stop_member(j, j.spare(), now);
        j.phase = Job::Phase::Idle;
    } else if (j.phase == Job::Phase::DrainingOld) {
        MemberRun& old = j.current();
        int64_t in_flight = in_flight_hint(j, j.active);
        if (!old.stopping && (in_flight == 0 || now >= j.phase_deadline_us)) {
            if (in_flight != 0) {
                log(LogLevel::Warning,
                    format_text(FPMRNO(00040) "replica '%s' of %s: old master (pid %d) still has %lld "
                                "requests after the drain timeout; stopping it anyway", j.name_c(),
                                j.vhost_c(), static_cast<int>(old.pid()),
                                static_cast<long long>(in_flight)));
            }
            stop_member(j, j.active, now, true);
        }
    }
}

// Every stop escalates: a master asked to stop that is still there when its
// deadline passes (a request that never ends, a client trickling a body) is
// killed with its workers, whichever path stopped it.
void SupervisorEngine::escalate_stops(int64_t now) {
    for (auto& j : jobs_) {
        for (MemberRun& m : j->runs) {
            if (!m.pid() || !m.stopping || m.kill_at_us == 0 || now < m.kill_at_us) continue;
            log(LogLevel::Warning,
                format_text(FPMRNO(00063) "replica '%s' of %s: master pid %d did not stop within %ds of "
                            "being asked to: killed with its workers", j->name_c(), j->vhost_c(),
                            static_cast<int>(m.pid()), static_cast<int>((now - m.stop_asked_us) / 1000000)));
            world_.processes.kill_with_workers(m.pid());
            m.kill_at_us = 0;  // once; its exit is reaped as usual
        }
    }
}

// The old master of a replacement has exited: the new one is the replica.
void SupervisorEngine::finish_replacement(Job& j) {
    j.active = j.spare();
    if (j.namespace_mode()) {
        if (TrustedRelease* rs = release_slot_of(j)) {
            uint64_t served = release_hash(j.current().release);
            if (rs->failed_release_hash.load() == served) rs->failed_release_hash.store(0);
        }
    }
    j.phase = Job::Phase::Idle;
    trusted(j, 0).restarts.fetch_add(1);
    log(LogLevel::Notice,
        format_text(FPMRNO(00041) "replica '%s' of %s replaced: pid %d on %s serves", j.name_c(), j.vhost_c(),
                    static_cast<int>(j.current().pid()), j.plan.members[j.active].socket.text().c_str()));
}

// Every flip of a release symlink, however it was made (fpm-replica deploy,
// a deploy tool's mv -T, by hand): the release it named before becomes its
// `previous`, which the status document shows and rollback goes back to.
// What the symlink named when this supervisor started is no flip it saw.
void SupervisorEngine::record_release_flips() {
    std::set<std::string> symlinks;
    for (const auto& j : jobs_) {
        if (!j->plan.release_symlink.empty() && !j->retiring) symlinks.insert(j->plan.release_symlink);
    }
    for (const std::string& symlink : symlinks) {
        std::string now_names = resolve_release(symlink);
        if (now_names.empty()) continue;  // dangling for now: no flip yet
        auto seen = release_seen_.find(symlink);
        if (seen == release_seen_.end()) {
            release_seen_.emplace(symlink, now_names);
            continue;
        }
        if (seen->second == now_names) continue;
        if (TrustedRelease* rs = release_slot_for(symlink)) {
            write_locked_string(rs->previous_seq, rs->previous, kReleaseLength, seen->second);
        }
        seen->second = now_names;
    }
}

TrustedRelease* SupervisorEngine::release_slot_of(const Job& j) const {
    return release_slot_for(j.plan.release_symlink);
}

TrustedRelease* SupervisorEngine::release_slot_for(const std::string& symlink) const {
    int index = shared_.find_release(symlink);
    return index < 0 ? nullptr : &shared_.trusted_release_rw(index);
}

void SupervisorEngine::set_prepare_state(const Job& j, PrepareState st) {
    if (TrustedRelease* rs = release_slot_of(j)) rs->prepare_state.store(static_cast<uint32_t>(st));
}

// The release a prepare request names, read from the open block as
// untrusted input: nullopt while it cannot be read consistently. A sequence
// counter left odd (a child died mid-write, or forged it) is logged once and
// cleared after kStuckRequestUs, so later requests work.
std::optional<std::string> SupervisorEngine::read_prepare_request(const Job& j, ReleaseSlot& open,
                                                                  int64_t now) {
    std::optional<std::string> text = read_locked_string(open.requested_seq, open.requested, kReleaseLength);
    const std::string& symlink = j.plan.release_symlink;
    if (text) {
        stuck_requests_.erase(symlink);
        return text;
    }
    uint32_t seq = open.requested_seq.load();
    auto [it, fresh] = stuck_requests_.try_emplace(symlink, StuckRequest{seq, now});
    if (fresh || it->second.seq != seq) {
        it->second = StuckRequest{seq, now};
        log(LogLevel::Warning,
            format_text(FPMRNO(00064) "the deploy preparation request of %s cannot be read (its write "
                        "never finished, or the shared memory was written by something else): ignored",
                        symlink.c_str()));
    } else if (now - it->second.since_us >= kStuckRequestUs &&
               clear_stuck_string(open.requested_seq, seq, open.requested, kReleaseLength)) {
        stuck_requests_.erase(it);
    }
    return std::nullopt;
}

// status action=prepare: one master on the requested release, on the spare
// member of the first replica that does not serve it yet. The request comes
// from an httpd child: the release is validated again here (the one release
// validation, and it must be a release of this vhost's symlink) before it
// becomes a helper's --release.
void SupervisorEngine::handle_prepare_requests(int64_t now) {
    for (auto& jp : jobs_) {
        Job& j = *jp;
        if (!j.plan.supervised || j.retiring || j.plan.release_symlink.empty()) continue;
        const std::string& symlink = j.plan.release_symlink;
        int index = shared_.find_release(symlink);
        if (index < 0) continue;
        TrustedRelease& rs = shared_.trusted_release_rw(index);
        ReleaseSlot& open = shared_.release_slot(index);
        uint32_t requests = open.prepare_requests.load();
        auto seen = prepare_seen_.find(symlink);
        if (seen == prepare_seen_.end()) {
            prepare_seen_[symlink] = requests;
            rs.prepare_handled.store(requests);
            continue;
        }
        if (seen->second == requests) continue;
        std::optional<std::string> requested = read_prepare_request(j, open, now);
        if (!requested) continue;
        std::string why;
        std::optional<std::string> valid = validate_prepared_release(symlink, *requested, &why);
        if (!valid) {
            seen->second = requests;
            rs.prepare_handled.store(requests);
            rs.prepare_state.store(static_cast<uint32_t>(PrepareState::Failed));
            log(LogLevel::Error, format_text(FPMRNO(00065) "deploy preparation for %s refused: %s",
                                             j.vhost_c(), why.c_str()));
            continue;
        }
        const std::string& target = *valid;
        if (!j.namespace_mode()) {
            seen->second = requests;
            rs.prepare_handled.store(requests);
            write_locked_string(rs.prepared_seq, rs.prepared, kReleaseLength, target);
            begin_prewarm(symlink, target, now);
            continue;
        }
        Job* chosen = nullptr;
        bool busy = false;
        for (auto& kp : jobs_) {
            Job& k = *kp;
            if (!k.plan.supervised || k.retiring || k.plan.release_symlink != symlink) continue;
            if (k.phase == Job::Phase::Prepared && k.runs[k.spare()].release == target) {
                chosen = &k;
                break;
            }
            busy = busy || k.phase != Job::Phase::Idle;
            if (!chosen && k.current().release != target) chosen = &k;
        }
        if (busy && !(chosen && chosen->phase == Job::Phase::Prepared)) {
            continue;  // a replacement is running: the request waits for it (state starting)
        }
        seen->second = requests;
        rs.prepare_handled.store(requests);
        write_locked_string(rs.prepared_seq, rs.prepared, kReleaseLength, target);
        if (!chosen || chosen->phase == Job::Phase::Prepared) {
            // Prepared already, or every replica already serves it.
            rs.prepare_state.store(static_cast<uint32_t>(PrepareState::Ready));
            continue;
        }
        rs.prepare_state.store(static_cast<uint32_t>(PrepareState::Starting));
        if (chosen->runs.size() < 2 || !start_member(*chosen, chosen->spare(), now, &target)) {
            log(LogLevel::Error,
                format_text(FPMRNO(00050) "cannot prepare release %s for %s: the replica has no alternate "
                            "socket (tcp:) or its master could not be forked", target.c_str(),
                            j.vhost_c()));
            rs.prepare_state.store(static_cast<uint32_t>(PrepareState::Failed));
            continue;
        }
        chosen->phase = Job::Phase::Preparing;
        chosen->phase_deadline_us = now + kStartTimeoutUs;
    }
}

// php-fpm's graceful stop (SIGQUIT: workers finish their request), and the
// deadline escalate_stops() kills it at. A master stopped at once (a restart
// in place, a cancelled prepare, a master not in the plan) gets the drain
// timeout to finish its requests; one whose requests had that time already
// (`drained`: a replacement's old master, a removed replica) gets
// kStopGraceUs more at most, to exit.
void SupervisorEngine::stop_member(Job& j, size_t member, int64_t now, bool drained) {
    MemberRun& m = j.runs[member];
    m.ping.reset();
    if (!m.pid()) return;
    if (!m.stopping) {
        m.stopping = true;
        m.stop_asked_us = now;
        int64_t drain = j.plan.drain_timeout_us;
        m.kill_at_us = now + (drained ? std::min(kStopGraceUs, drain) : drain);
    }
    set_state(j, member, ReplicaState::Draining);
    world_.processes.ask_to_stop(m.pid());
}

// Realpath mode, status action=prepare: every serving master of the
// symlink's replicas compiles the working set it has now, mapped to
// `target`, so the first requests after the flip find it cached. The
// preparation is ready once each has answered (or its warm-up timeout ran out).
void SupervisorEngine::begin_prewarm(const std::string& symlink, const std::string& target, int64_t now) {
    bool any = false;
    for (auto& kp : jobs_) {
        Job& k = *kp;
        if (!k.plan.supervised || k.retiring || k.plan.release_symlink != symlink) continue;
        k.prewarm_ping.reset();
        k.prewarm = Job::Prewarm::None;
        const MemberRun& m = k.current();
        if (!k.plan.warmup.enabled || !m.pid() || m.stopping || state(k, k.active) != ReplicaState::Ready ||
            !world_.pings.script_present(k.plan.warmup.script)) {
            continue;
        }
        k.prewarm = Job::Prewarm::Listing;
        k.prewarm_release = target;
        k.prewarm_deadline_us = now + k.plan.warmup.timeout_us;
        k.prewarm_ping = start_script_list(k.plan.members[k.active].socket, k.plan.warmup.script,
                                           k.prewarm_deadline_us);
        any = true;
    }
    if (TrustedRelease* rs = release_slot_for(symlink)) {
        rs->prepare_state.store(static_cast<uint32_t>(any ? PrepareState::Starting : PrepareState::Ready));
    }
}

void SupervisorEngine::advance_prewarms(int64_t now) {
    std::set<std::string> advanced, pending;
    for (auto& kp : jobs_) {
        Job& k = *kp;
        if (k.prewarm == Job::Prewarm::None) continue;
        advanced.insert(k.plan.release_symlink);
        MasterPing::Result result = k.prewarm_ping ? k.prewarm_ping->advance(world_.clock.now_us())
                                                   : MasterPing::Result::Failed;
        if (result == MasterPing::Result::Pending) {
            pending.insert(k.plan.release_symlink);
            continue;
        }
        int status = k.prewarm_ping ? k.prewarm_ping->http_status() : 0;
        std::string body = result == MasterPing::Result::Answered ? k.prewarm_ping->body() : std::string();
        k.prewarm_ping.reset();
        bool listed = k.prewarm == Job::Prewarm::Listing;
        k.prewarm = Job::Prewarm::None;
        if (result != MasterPing::Result::Answered || status < 200 || status >= 300) {
            if (status != 409) {
                log(LogLevel::Warning,
                    format_text(FPMRNO(00178) "replica '%s' of %s: compiling release %s before the flip "
                                "stopped (%s); the flip finds it cold", k.name_c(), k.vhost_c(),
                                k.prewarm_release.c_str(),
                                result == MasterPing::Result::Answered ? "the warm-up script refused"
                                                                       : "no answer in time"));
            }
            continue;
        }
        if (!listed) continue;  // compiled: done
        std::vector<std::string> working_set =
            map_working_set(parse_script_list(body).scripts, resolve_release(k.plan.release_symlink),
                            k.prewarm_release, "", SharedScripts::kDrop);
        if (working_set.empty()) continue;
        k.prewarm = Job::Prewarm::Compiling;
        k.prewarm_ping = start_compile(k.plan.members[k.active].socket, k.plan.warmup.script, working_set,
                                       k.prewarm_deadline_us, now);
        pending.insert(k.plan.release_symlink);
    }
    for (const std::string& symlink : advanced) {
        if (pending.count(symlink)) continue;
        if (TrustedRelease* rs = release_slot_for(symlink)) {
            rs->prepare_state.store(static_cast<uint32_t>(PrepareState::Ready));
        }
    }
}

void SupervisorEngine::turn() {
    int64_t now = world_.clock.now_us();
    reap(now);
    record_release_flips();
    handle_prepare_requests(now);
    advance_prewarms(now);
    notice_replacement_requests(false, now);
    starting_ = masters_starting();
    for (auto& j : jobs_) start_if_due(*j, now);
    for (auto& j : jobs_) check_ready(*j, now);
    starting_ = masters_starting();  // those that became ready free their place
    advance_replacements(now);
    advance_retirements(now);
    escalate_stops(world_.clock.now_us());
    for (auto& j : jobs_) check_health(*j, world_.clock.now_us());
}

void SupervisorEngine::begin_stop() {
    int64_t now = world_.clock.now_us();
    for (auto& j : jobs_) {
        for (size_t i = 0; i < j->runs.size(); ++i) stop_member(*j, i, now);
    }
}

void SupervisorEngine::turn_stopping() {
    reap(world_.clock.now_us());
    escalate_stops(world_.clock.now_us());  // each vhost's own drain timeout
}

bool SupervisorEngine::any_running() const {
    for (const auto& j : jobs_) {
        for (const MemberRun& m : j->runs) {
            if (m.pid()) return true;
        }
    }
    return false;
}

// httpd is stopping and the drain timeout has passed: SIGKILL for whatever
// is left of the masters this supervisor started (someone else's masters,
// only health-checked, are left alone).
void SupervisorEngine::kill_remaining() {
    for (auto& j : jobs_) {
        if (!j->plan.supervised) continue;
        for (size_t i = 0; i < j->runs.size(); ++i) {
            MemberRun& m = j->runs[i];
            if (m.pid()) {
                log(LogLevel::Warning,
                    format_text(FPMRNO(00031) "replica '%s' (pid %d) did not stop within the drain "
                                "timeout: killed", j->name_c(), static_cast<int>(m.pid())));
                world_.processes.kill_and_forget(m.pid());
                m.master = MasterIdentity{};
            }
            trusted(*j, i).pid.store(0);
            set_state(*j, i, ReplicaState::Stopped);
        }
    }
}

}  // namespace fpmr
