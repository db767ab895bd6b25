// The replica supervisor process: one per httpd instance, forked by the httpd
// parent (glue_supervisor_launch.cc) at the first start and kept across
// graceful restarts, which starts every replica of the vhosts with FpmReplicaSpawn, marks it ready
// once its socket answers, restarts it with backoff when it dies (failed
// after repeated quick crashes), and stops them all when httpd stops.
//
// Every restart of httpd (`apachectl graceful`) and the status handler's
// restart action replace replicas one at a time: the new master starts on the
// replica's alternate socket, takes new requests once it answers, and the old
// one is stopped when its in-flight count reaches zero (or the drain timeout).
//
// At every restart the httpd parent also sends the new configuration (a
// SupervisorPlan, through a pipe): replicas that stay take their new settings
// (FpmReplicaSpawn, helper, health checks...) from their replacement on,
// new replicas start, removed ones drain and stop.
//
// A supervisor forked after its predecessor died takes over the masters
// recorded in the shared slots; not being their parent, it polls for their
// exit.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "glue.h"
#include "glue_masters.h"
#include "release_resolver.h"
#include "supervision.h"
#include "fcgi_ping_client.h"
#include "supervisor_plan.h"

namespace fpmr::glue {

namespace {

constexpr int64_t kTickUs = 100000;

// One balancer member of a supervised replica (its slot and sockets, as the
// plan has them) and the master serving on it.
struct MemberRun : MemberPlan {
    pid_t pid = 0;           // master.pid() while a master runs, else 0
    MasterHandle master;     // how it is signalled (glue_masters.h)
    int64_t started_us = 0;
    std::string release;     // what its master serves (namespace mode)
    bool stopping = false;   // we asked it to stop: its exit is no crash
    bool adopted = false;    // started by a supervisor before us: not our child,
                             // so its exit is seen by polling, not by waitpid
    // The FastCGI ping in flight to it (readiness while starting, else a
    // health check): advanced each turn of the loop, never waited for.
    std::unique_ptr<FcgiPingClient> ping;
    bool ping_for_health = false;
    int64_t ping_started_us = 0;
    int64_t stop_asked_us = 0;  // when it was asked to stop (SIGQUIT)
    int64_t kill_at_us = 0;     // SIGKILL to its group if still running then; 0: none due
    // FpmReplicaHealthCheck bookkeeping.
    int failed_checks = 0;
    int passed_checks = 0;
    int64_t next_check_us = 0;
    bool health_failed = false;  // out of rotation because of its checks
};

// One supervised replica, as the supervisor process sees it. `active` is the
// member that serves; during a replacement the other one starts, and once it
// is ready the active one drains and stops.
struct Job {
    std::string vhost;
    bool supervised = true;        // false: FpmReplicaHealthCheck only, started by someone else
    std::optional<HealthCheckSpec> health;
    SpawnRequest request;          // release_dir set by each start, read only there
    std::string release_symlink;   // "" without FpmReplicaRelease
    int64_t drain_timeout_us = 0;  // its vhost's FpmReplicaDrainTimeout
    std::vector<MemberRun> members;  // [0] primary, [1] alternate (unix sockets)
    int active = 0;
    int64_t next_start_us = 0;
    bool failed = false;
    bool ever_started = false;
    RestartBackoff backoff;
    uint32_t restart_seen = 0;     // restart_requested value already handled
    bool replace_pending = false;  // a rolling replacement is due
    // Preparing/Prepared: a deploy tool asked for a master on a release
    // before flipping the symlink (status action=prepare); it runs on the
    // spare member, takes no request until the flip, then takes over.
    enum class Phase { Idle, StartingNew, DrainingOld, Preparing, Prepared } phase = Phase::Idle;
    // Removed from the configuration by a restart of httpd: its masters stop
    // once old requests had time to finish, then the job is dropped.
    bool retiring = false;
    int64_t retire_after_us = 0;     // not before (children of the old generation may still send)
    int64_t retire_deadline_us = 0;  // stop even with requests in flight
    int64_t phase_deadline_us = 0;
    // Namespace mode: a release whose replacement failed is not tried again
    // before this time (no hot loop on a broken deploy).
    std::string failed_release;
    int64_t failed_release_retry_us = 0;

    bool namespace_mode() const { return !request.stable_path.empty(); }

    const std::string& name() const { return request.replica.name; }
    MemberRun& current() { return members[active]; }
    MemberRun& spare() { return members[members.size() > 1 ? 1 - active : active]; }
};

Job make_job(const ReplicaPlan& plan) {
    Job j;
    j.vhost = plan.vhost;
    j.supervised = plan.supervised;
    j.health = plan.health;
    j.request = plan.request;
    j.release_symlink = plan.release_symlink;
    j.drain_timeout_us = plan.drain_timeout_us;
    for (const MemberPlan& mp : plan.members) {
        MemberRun run;
        static_cast<MemberPlan&>(run) = mp;
        j.members.push_back(std::move(run));
    }
    return j;
}

ReplicaPlan plan_of(const Job& j) {
    ReplicaPlan plan;
    plan.vhost = j.vhost;
    plan.supervised = j.supervised;
    plan.health = j.health;
    plan.request = j.request;
    plan.release_symlink = j.release_symlink;
    plan.drain_timeout_us = j.drain_timeout_us;
    for (const MemberPlan& m : j.members) plan.members.push_back(m);
    return plan;
}

// The settings of a replica that stays (same members): they apply from its
// next start, which the restart that brought them is about to cause (and
// which sets request.release_dir anew).
void apply_settings(Job& j, const ReplicaPlan& plan) {
    j.health = plan.health;
    j.request = plan.request;
    j.release_symlink = plan.release_symlink;
    j.drain_timeout_us = plan.drain_timeout_us;
    for (size_t i = 0; i < j.members.size(); ++i) j.members[i].status = plan.members[i].status;
}

volatile sig_atomic_t g_stop_requested = 0;
void request_stop(int) { g_stop_requested = 1; }

std::string resolve_release(const std::string& symlink) {
    if (symlink.empty()) return {};
    std::string error;
    return resolve_release_dir(symlink, &error).value_or("");
}

// Forks and execs one replica in a process group of its own (so it can be
// stopped whole), with only stdin/stdout/stderr and the planned environment.
pid_t start_replica(const SpawnPlan& plan) {
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

// php-fpm does not create the directory of its listen socket; /run is a
// fresh tmpfs at every boot. Creates what is missing of it (root, 0755),
// as systemd's RuntimeDirectory= would. Walked one component at a time
// without following symlinks, so a symlink planted where the path runs
// through a directory someone else can write cannot send root's mkdir (and
// php-fpm's socket) elsewhere: a symlink is followed only when root owns it
// and the directory it is in can be changed by root alone (/var/run -> /run).
// Only root can change what lies beneath a directory it owns that nobody
// else may write, or may write only with the sticky bit (the helper's rule,
// helper_rules.cc untrusted_directory_reason).
bool only_root_can_change(const struct stat& dir) {
    return dir.st_uid == 0 && (!(dir.st_mode & 022) || (dir.st_mode & S_ISVTX));
}

void ensure_socket_directory(const SocketSpec& socket, server_rec* s) {
    if (socket.kind != SocketSpec::Kind::Unix) return;
    std::string dir = socket.path.substr(0, socket.path.rfind('/'));
    int at = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    std::string walked;
    std::string untrusted;  // the first directory on the way others can change
    size_t from = 1;
    while (at >= 0 && from <= dir.size()) {
        struct stat here;
        if (untrusted.empty() && ::fstat(at, &here) == 0 && !only_root_can_change(here)) {
            untrusted = walked.empty() ? "/" : walked;
        }
        size_t slash = dir.find('/', from);
        std::string name = dir.substr(from, slash == std::string::npos ? std::string::npos : slash - from);
        from = slash == std::string::npos ? dir.size() + 1 : slash + 1;
        if (name.empty()) continue;
        walked += "/" + name;
        int next = ::openat(at, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT && !untrusted.empty()) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, FPMRNO(00069)
                         "not creating the socket directory of %s: %s can be changed by "
                         "someone other than root", socket.path.c_str(), untrusted.c_str());
            break;
        }
        if (next < 0 && errno == ENOENT && ::mkdirat(at, name.c_str(), 0755) == 0) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, FPMRNO(00056)
                         "created the socket directory %s", walked.c_str());
            next = ::openat(at, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        } else if (next < 0 && (errno == ENOTDIR || errno == ELOOP)) {
            struct stat link, parent;
            bool trusted_link = ::fstatat(at, name.c_str(), &link, AT_SYMLINK_NOFOLLOW) == 0 &&
                                S_ISLNK(link.st_mode) && link.st_uid == 0 &&
                                ::fstat(at, &parent) == 0 && only_root_can_change(parent);
            if (!trusted_link) {
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, FPMRNO(00067)
                             "not creating the socket directory of %s: %s is a symlink someone "
                             "other than root can change", socket.path.c_str(), walked.c_str());
                ::close(at);
                return;
            }
            next = ::openat(at, name.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
        }
        ::close(at);
        at = next;
    }
    if (at >= 0) ::close(at);
}

void sleep_us(int64_t us) {
    timespec ts{static_cast<time_t>(us / 1000000), static_cast<long>((us % 1000000) * 1000)};
    ::nanosleep(&ts, nullptr);
}

// How long a readiness ping may take (a master that is up answers in
// microseconds; a failed one is tried again the next turn).
constexpr int64_t kReadyPingUs = 500000;
// How long a replacement master may take to answer before the replacement
// is abandoned (the current master keeps serving).
constexpr int64_t kStartTimeoutUs = 30 * 1000000LL;
// How long a master asked to stop (SIGQUIT) may take before SIGKILL.
constexpr int64_t kStopGraceUs = 10 * 1000000LL;

// How long the supervisor waits, after it saw httpd restart, for the new
// configuration the parent sends it (sent a moment after the restart is
// announced in the shared block).
constexpr int64_t kPlanWaitUs = 3 * 1000000LL;
// A removed replica's masters stop no sooner than this after the restart:
// children of the old generation may still be sending it requests.
constexpr int64_t kRetireGraceUs = 2 * 1000000LL;
// Reads of the plan channel per turn of the loop.
constexpr int kPlanReadsPerTurn = 16;
// A prepare request whose sequence counter stays odd this long is cleared.
constexpr int64_t kStuckRequestUs = 1000000;

class Supervisor {
public:
    Supervisor(server_rec* s, const SupervisorPlan& plan, int plan_fd, pid_t parent)
        : s_(s), drain_timeout_us_(plan.drain_timeout_us), shared_(writer_.state()),
          plan_fd_(plan_fd), parent_(parent), parent_uid_(::getuid()) {
        generation_seen_ = shared_.config_generation();
        for (const ReplicaPlan& r : plan.replicas) add_job(r);
        int adopted = 0;
        for (Job& j : jobs_) adopted += adopt_running_masters(j, now_us());
        if (adopted) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s_, FPMRNO(00057)
                         "the replica supervisor took over %d running php-fpm masters", adopted);
        }
    }

    [[noreturn]] void run() {
        while (!g_stop_requested) {
            int64_t now = now_us();
            drain_plan_channel();
            reap(now);
            handle_prepare_requests(now);
            notice_replacement_requests(now);
            for (Job& j : jobs_) start_if_due(j, now);
            for (Job& j : jobs_) check_ready(j, now);
            advance_replacement(now);
            advance_retirements(now);
            escalate_stops(now_us());
            for (Job& j : jobs_) check_health(j, now_us());
            wait_for_pings(kTickUs);
        }
        stop_all();
        ::_exit(0);
    }

private:
    // The member's figures children write (untrusted: counts and requests)
    // and the ones only this process writes (lifecycle, pid, release).
    ReplicaSlot& slot(MemberRun& m) { return shared_.slot(m.slot); }
    TrustedSlot& trusted(MemberRun& m) { return shared_.trusted_rw(m.slot); }

    // In-flight requests on a member as httpd's children count them. A
    // child can write any value there, so it only times a stop this process
    // decided anyway (never earlier than "empty", never later than the
    // drain timeout); a negative count reads as empty.
    int64_t in_flight_hint(MemberRun& m) {
        int64_t n = slot(m).in_flight.load();
        return n < 0 ? 0 : n;
    }

    // After a supervisor died, its successor finds the masters it left in
    // the trusted block: the serving one (ready, else the primary) stays and
    // is watched; any other (a replacement or a draining master) is stopped.
    // A recorded master is taken over only if the process with its pid is
    // still that master (same start time, its own session): a pid reused
    // since is somebody else's process and is left alone.
    int adopt_running_masters(Job& j, int64_t now) {
        if (!j.supervised) return 0;
        int keep = -1;
        std::vector<std::optional<MasterHandle>> alive(j.members.size());
        for (size_t i = 0; i < j.members.size(); ++i) {
            TrustedSlot& t = trusted(j.members[i]);
            pid_t pid = t.pid.load();
            if (pid == 0) continue;
            alive[i] = hold_adopted(pid, t.pid_start_time.load());
            if (!alive[i]) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s_, FPMRNO(00062)
                             "replica '%s' of %s: the recorded master pid %d is not the master "
                             "that was started there (gone, or the pid was reused): not taken over",
                             j.name().c_str(), j.vhost.c_str(), static_cast<int>(pid));
                t.pid.store(0);
                continue;
            }
            if (keep < 0 || (state(j.members[i]) == ReplicaState::Ready &&
                             state(j.members[keep]) != ReplicaState::Ready)) {
                keep = static_cast<int>(i);
            }
        }
        int adopted = 0;
        for (size_t i = 0; i < j.members.size(); ++i) {
            if (!alive[i]) continue;
            MemberRun& m = j.members[i];
            m.master = *alive[i];
            m.pid = m.master.pid();
            m.adopted = true;
            m.started_us = now;
            m.release = read_slot_release(trusted(m)).value_or("");
            ++adopted;
            if (static_cast<int>(i) != keep) stop_member(j, m, now);
        }
        if (keep >= 0) {
            j.active = keep;
            j.ever_started = true;
        }
        return adopted;
    }

    // Sleeps one tick, or less if a ping in flight can make progress.
    void wait_for_pings(int64_t tick_us) {
        std::vector<pollfd> fds;
        for (Job& j : jobs_) {
            for (MemberRun& m : j.members) {
                if (m.ping && m.ping->fd() >= 0) fds.push_back({m.ping->fd(), m.ping->events(), 0});
            }
        }
        if (fds.empty()) {
            sleep_us(tick_us);
            return;
        }
        ::poll(fds.data(), fds.size(), static_cast<int>(tick_us / 1000));
    }

    // Starts a ping to a member's status socket (its main one without).
    void start_ping(MemberRun& m, bool for_health, const std::string& path, int64_t timeout_us,
                    int64_t now) {
        m.ping = std::make_unique<FcgiPingClient>(m.status ? *m.status : m.socket, path,
                                                  now + timeout_us);
        m.ping_for_health = for_health;
        m.ping_started_us = now;
    }

    void add_job(const ReplicaPlan& plan) {
        jobs_.push_back(make_job(plan));
        Job& j = jobs_.back();
        j.restart_seen = slot(j.members[0]).restart_requested.load();
    }

    // The plan for `generation` from the parent; nullopt if none arrives in
    // time. Older or unreadable frames are skipped.
    std::optional<SupervisorPlan> receive_plan(uint32_t generation) {
        int64_t deadline = now_us() + kPlanWaitUs;
        for (;;) {
            std::optional<SupervisorPlan> plan;
            while (plan_frames_.next(&plan)) {
                if (plan && plan->generation == generation) return plan;
            }
            if (plan_frames_.broken()) close_plan_channel();
            int64_t left = deadline - now_us();
            if (left <= 0 || plan_fd_ < 0) return std::nullopt;
            pollfd p{plan_fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left / 1000) + 1) <= 0) continue;
            char buffer[65536];
            bool from_parent = false;
            ssize_t n = read_plan_bytes(buffer, sizeof buffer, &from_parent);
            if (n > 0 && from_parent) {
                plan_frames_.append(buffer, static_cast<size_t>(n));
            } else if (n > 0) {
                continue;  // logged by read_plan_bytes; dropped
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                close_plan_channel();  // the parent gave up on the channel
            }
        }
    }

    // One read of the plan channel. The kernel attaches the sender's
    // credentials to what it reads (SO_PASSCRED) and never joins bytes of
    // two senders in one read, so bytes an httpd child wrote (it inherited
    // the parent's end before it closed it) are told apart and dropped
    // (`from_parent` false): they never reach the decoder.
    ssize_t read_plan_bytes(char* buffer, size_t size, bool* from_parent) {
        iovec iov{buffer, size};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        ssize_t n = ::recvmsg(plan_fd_, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n <= 0) return n;
        const ucred* cred = nullptr;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
                c->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
                cred = reinterpret_cast<const ucred*>(CMSG_DATA(c));
            }
        }
        *from_parent = cred && cred->pid == parent_ && cred->uid == parent_uid_ &&
                       !(msg.msg_flags & MSG_CTRUNC);
        if (!*from_parent) {
            dropped_bytes_ += n;
            int64_t now = now_us();
            if (now - dropped_logged_us_ >= 1000000) {  // once a second at most
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, s_, FPMRNO(00066)
                             "dropped %ld bytes on the configuration channel from pid %d (uid %d), "
                             "which is not the httpd parent", static_cast<long>(dropped_bytes_),
                             cred ? static_cast<int>(cred->pid) : -1,
                             cred ? static_cast<int>(cred->uid) : -1);
                dropped_logged_us_ = now;
                dropped_bytes_ = 0;
            }
        }
        return n;
    }

    // Every turn: what waits on the plan channel is read now, so bytes from
    // anyone but the parent are dropped as they come and cannot fill the
    // channel ahead of the parent's next plan.
    // At most kPlanReadsPerTurn reads a turn, so a flood cannot hold up
    // reaping, checks and stop deadlines.
    void drain_plan_channel() {
        for (int reads = 0; plan_fd_ >= 0 && reads < kPlanReadsPerTurn; ++reads) {
            char buffer[65536];
            bool from_parent = false;
            ssize_t n = read_plan_bytes(buffer, sizeof buffer, &from_parent);
            if (n > 0) {
                if (from_parent) plan_frames_.append(buffer, static_cast<size_t>(n));
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
            close_plan_channel();  // the parent gave up on the channel
        }
    }

    // Closed for good: the parent's next send fails, and it replaces this
    // supervisor by one forked with the new configuration (FPMR00068).
    void close_plan_channel() {
        if (plan_fd_ >= 0) ::close(plan_fd_);
        plan_fd_ = -1;
        plan_frames_.clear();
    }

    // httpd restarted: compare its new configuration with what runs.
    void reconfigure(uint32_t generation, int64_t now) {
        std::optional<SupervisorPlan> plan = receive_plan(generation);
        if (!plan) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s_, FPMRNO(00054)
                         "the replica supervisor received no configuration for this restart of "
                         "httpd; its replicas keep their previous settings");
            return;
        }
        drain_timeout_us_ = plan->drain_timeout_us;
        std::vector<size_t> live;  // indices into jobs_ of the replicas not retiring
        std::vector<ReplicaPlan> running;
        for (size_t i = 0; i < jobs_.size(); ++i) {
            if (jobs_[i].retiring) continue;
            live.push_back(i);
            running.push_back(plan_of(jobs_[i]));
        }
        PlanChanges changes = compare_plans(running, plan->replicas);
        for (auto [ri, wi] : changes.kept) apply_settings(jobs_[live[ri]], plan->replicas[wi]);
        for (auto [ri, wi] : changes.switched) {
            Job& j = jobs_[live[ri]];
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s_, FPMRNO(00052)
                         "replica '%s' of %s is now %s: the running one is left as it is until "
                         "httpd is stopped and started", j.name().c_str(), j.vhost.c_str(),
                         plan->replicas[wi].supervised ? "supervised" : "no longer supervised");
        }
        for (size_t ri : changes.removed) retire(jobs_[live[ri]], now);
        for (size_t wi : changes.added) add_job(plan->replicas[wi]);
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s_, FPMRNO(00051)
                     "new configuration: %lu replicas kept (replaced one by one), %lu added, "
                     "%lu removed, %lu left as they were (supervision switched)",
                     static_cast<unsigned long>(changes.kept.size()),
                     static_cast<unsigned long>(changes.added.size()),
                     static_cast<unsigned long>(changes.removed.size()),
                     static_cast<unsigned long>(changes.switched.size()));
    }

    void retire(Job& j, int64_t now) {
        j.retiring = true;
        j.replace_pending = false;
        if (j.phase == Job::Phase::Preparing || j.phase == Job::Phase::Prepared) {
            set_prepare_state(j, PrepareState::Failed);
        }
        j.phase = Job::Phase::Idle;
        j.retire_after_us = now + kRetireGraceUs;
        j.retire_deadline_us = now + std::max(j.drain_timeout_us, kRetireGraceUs);
        for (MemberRun& m : j.members) {
            if (m.pid && !m.stopping) set_state(m, ReplicaState::Draining);
        }
    }

    // Removed replicas: each master stops once it is empty (or at the drain
    // timeout); a replica with no master left is dropped.
    void advance_retirements(int64_t now) {
        for (auto it = jobs_.begin(); it != jobs_.end();) {
            Job& j = *it;
            if (!j.retiring) {
                ++it;
                continue;
            }
            bool running = false;
            for (MemberRun& m : j.members) {
                if (!m.pid) continue;
                running = true;
                if (!j.supervised || m.stopping || now < j.retire_after_us) continue;
                if (in_flight_hint(m) == 0 || now >= j.retire_deadline_us) {
                    stop_member(j, m, now, true);
                }
            }
            if (running && j.supervised) {
                ++it;
                continue;
            }
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s_, FPMRNO(00053)
                         "replica '%s' of %s is no longer configured: %s", j.name().c_str(),
                         j.vhost.c_str(), j.supervised ? "its masters stopped" : "no longer checked");
            it = jobs_.erase(it);
        }
    }
    void set_state(MemberRun& m, ReplicaState st) { trusted(m).lifecycle.store(static_cast<uint32_t>(st)); }
    ReplicaState state(MemberRun& m) { return static_cast<ReplicaState>(trusted(m).lifecycle.load()); }
    void set_health(MemberRun& m, HealthState h) { trusted(m).health.store(static_cast<uint32_t>(h)); }

    pid_t start_member(Job& j, MemberRun& m, int64_t now, const std::string* release = nullptr) {
        j.request.release_dir = release ? *release : resolve_release(j.release_symlink);
        if (j.namespace_mode() && j.request.release_dir.empty()) return 0;  // dangling: wait
        m.release = j.request.release_dir;
        write_slot_release(trusted(m), m.release);
        ensure_socket_directory(m.socket, s_);
        if (m.status) ensure_socket_directory(*m.status, s_);
        if (j.request.replica.probe) ensure_socket_directory(*j.request.replica.probe, s_);
        SpawnRequest req = j.request;
        req.replica.socket = m.socket;
        req.replica.status = m.status;
        pid_t pid = start_replica(plan_spawn(req));
        if (pid <= 0) return 0;
        m.master = hold_child(pid);
        m.pid = pid;
        m.adopted = false;
        m.started_us = now;
        m.stopping = false;
        m.kill_at_us = 0;
        m.failed_checks = m.passed_checks = 0;
        m.health_failed = false;
        trusted(m).pid_start_time.store(m.master.identity.start_time);
        trusted(m).pid.store(pid);
        slot(m).retry_at_us.store(0);
        set_health(m, HealthState::Unknown);
        set_state(m, ReplicaState::Starting);
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s_, FPMRNO(00029)
                     "started replica '%s' of %s on %s: pid %d%s%s", j.name().c_str(),
                     j.vhost.c_str(), m.socket.text().c_str(), pid,
                     j.request.release_dir.empty() ? "" : ", release ", j.request.release_dir.c_str());
        return pid;
    }

    // Our children are seen exiting with WNOWAIT first: while the zombie
    // is not reaped its pid (and so its process group number) cannot be
    // reused, so the SIGKILL to what is left of its group cannot hit anyone
    // else's processes. Only then is it reaped.
    void reap(int64_t now) {
        for (;;) {
            siginfo_t info{};
            if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) break;
            pid_t pid = info.si_pid;
            int status = 0;
            bool ours = false;
            for (Job& j : jobs_) {
                for (size_t mi = 0; mi < j.members.size(); ++mi) {
                    if (j.members[mi].pid != pid || j.members[mi].adopted) continue;
                    ours = true;
                    kill_group(j.members[mi].master);  // workers of a master that is gone
                    ::waitpid(pid, &status, 0);
                    on_member_exit(j, mi, status, now);
                }
            }
            if (!ours) ::waitpid(pid, &status, 0);  // not a master (or already forgotten)
        }
        // Adopted masters are not our children: their pidfd says they are
        // gone (exit status unknown; reported as 0).
        for (Job& j : jobs_) {
            for (size_t mi = 0; mi < j.members.size(); ++mi) {
                MemberRun& m = j.members[mi];
                if (m.adopted && m.pid && exited(m.master)) {
                    kill_master_and_workers(m.master);
                    on_member_exit(j, mi, 0, now);
                }
            }
        }
    }

    void on_member_exit(Job& j, size_t mi, int status, int64_t now) {
        MemberRun& m = j.members[mi];
        pid_t pid = m.pid;
        release(m.master);
        m.master = MasterHandle{};
        m.pid = 0;
        m.adopted = false;
        m.kill_at_us = 0;
        m.ping.reset();
        trusted(m).pid.store(0);
        trusted(m).pid_start_time.store(0);
        if (m.stopping) {
            set_state(m, ReplicaState::Stopped);
            if (j.phase == Job::Phase::DrainingOld && static_cast<int>(mi) == j.active) {
                finish_replacement(j);
            }
            return;
        }
        on_crash(j, static_cast<int>(mi), pid, status, now);
    }

    void on_crash(Job& j, int member, pid_t pid, int status, int64_t now) {
        MemberRun& m = j.members[member];
        std::string how = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                            : "was killed by signal " + std::to_string(WTERMSIG(status));
        if (member != j.active) {
            // The replacement died before taking over: keep the current master.
            if (j.phase == Job::Phase::Preparing || j.phase == Job::Phase::Prepared) {
                set_prepare_state(j, PrepareState::Failed);
            }
            set_state(m, ReplicaState::Stopped);
            j.phase = Job::Phase::Idle;
            j.replace_pending = false;
            remember_failed_release(j, m, now);
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s_, FPMRNO(00037)
                         "replacement of replica '%s' of %s failed: its new master (pid %d) %s; "
                         "the current master keeps serving", j.name().c_str(), j.vhost.c_str(),
                         pid, how.c_str());
            return;
        }
        int64_t again = j.backoff.on_exit(now, now - m.started_us);
        if (again < 0) {
            j.failed = true;
            set_state(m, ReplicaState::Failed);
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s_, FPMRNO(00027)
                         "replica '%s' of %s (pid %d) %s; it crashed %d times within a minute: "
                         "marked failed, not restarted", j.name().c_str(), j.vhost.c_str(), pid,
                         how.c_str(), j.backoff.crashes());
        } else {
            j.next_start_us = again;
            set_state(m, ReplicaState::Starting);
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s_, FPMRNO(00028)
                         "replica '%s' of %s (pid %d) %s; restarting it in %" APR_INT64_T_FMT "ms",
                         j.name().c_str(), j.vhost.c_str(), pid, how.c_str(),
                         static_cast<apr_int64_t>((again - now) / 1000));
        }
    }

    // A restart of httpd replaces every replica; the status handler's
    // restart action replaces one; in namespace mode, a flipped release
    // symlink replaces every replica serving another release.
    void notice_replacement_requests(int64_t now) {
        uint32_t generation = shared_.config_generation();
        bool restarted = generation != generation_seen_;
        generation_seen_ = generation;
        if (restarted) reconfigure(generation, now);
        for (Job& j : jobs_) {
            if (!j.supervised || j.retiring) continue;
            uint32_t requested = slot(j.members[0]).restart_requested.load();
            // A replica that never started (one this restart added) has
            // nothing to replace.
            if ((restarted && j.ever_started) || requested != j.restart_seen) {
                j.replace_pending = true;
            }
            j.restart_seen = requested;
            if (!j.namespace_mode() || !j.current().pid ||
                (j.phase != Job::Phase::Idle && j.phase != Job::Phase::Prepared)) {
                continue;
            }
            std::string wanted = resolve_release(j.release_symlink);
            if (wanted.empty() || wanted == j.current().release) continue;
            if (wanted == j.failed_release && now < j.failed_release_retry_us) continue;
            j.replace_pending = true;
        }
    }

    std::atomic<uint64_t>* failed_release_flag(Job& j) {
        int index = shared_.find_release(j.release_symlink);
        return index < 0 ? nullptr : &shared_.trusted_release_rw(index).failed_release_hash;
    }

    void remember_failed_release(Job& j, MemberRun& m, int64_t now) {
        if (!j.namespace_mode()) return;
        if (auto* flag = failed_release_flag(j)) flag->store(release_hash(m.release));
        j.failed_release = m.release;
        j.failed_release_retry_us = now + 30 * 1000000LL;
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s_, FPMRNO(00043)
                     "replica '%s' of %s cannot serve release %s; it keeps serving %s and tries "
                     "again in 30s", j.name().c_str(), j.vhost.c_str(), m.release.c_str(),
                     j.current().release.c_str());
    }

    // FpmReplicaHealthCheck: `fails` missed checks in a row take a member out
    // of rotation (failed); `passes` answered ones bring it back. A supervised
    // master that fails its checks (hung, say) is killed and restarted.
    void check_health(Job& j, int64_t now) {
        if (!j.health || j.retiring) {
            for (MemberRun& m : j.members) {
                if (m.ping && m.ping_for_health) m.ping.reset();
            }
            return;
        }
        const HealthCheckSpec& h = *j.health;
        for (MemberRun& m : j.members) {
            if ((j.supervised && (!m.pid || m.stopping)) || state(m) != ReplicaState::Ready) {
                if (m.ping && m.ping_for_health) m.ping.reset();
                continue;
            }
            if (!m.ping) {
                if (now < m.next_check_us) continue;
                start_ping(m, true, h.path, h.timeout_us, now);
            }
            FcgiPingClient::Result result = m.ping->advance(now_us());
            if (result == FcgiPingClient::Result::Pending) continue;
            int64_t ended = now_us();
            trusted(m).check_latency_us.store(ended - m.ping_started_us);
            m.next_check_us = ended + h.interval_us;
            // As mod_proxy_hcheck: a check passes on a 2xx or 3xx answer only
            // (a /ping that answers 500 is a failing replica).
            bool ok = m.ping->answered_ok();
            m.ping.reset();
            if (ok) {
                m.failed_checks = 0;
                ++m.passed_checks;
                if (!m.health_failed) {
                    set_health(m, HealthState::Passing);
                } else if (m.passed_checks >= h.passes) {
                    m.health_failed = false;
                    set_health(m, HealthState::Passing);
                    slot(m).retry_at_us.store(0);
                    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s_, FPMRNO(00045)
                                 "replica '%s' of %s on %s passes its health checks again: back "
                                 "in rotation", j.name().c_str(), j.vhost.c_str(),
                                 m.socket.text().c_str());
                }
                continue;
            }
            m.passed_checks = 0;
            ++m.failed_checks;
            if (!m.health_failed && m.failed_checks >= h.fails) {
                m.health_failed = true;
                set_health(m, HealthState::Failing);
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, s_, FPMRNO(00044)
                             "replica '%s' of %s on %s failed %d health checks in a row: out of "
                             "rotation%s", j.name().c_str(), j.vhost.c_str(), m.socket.text().c_str(),
                             m.failed_checks, j.supervised ? "; restarting it" : "");
                if (j.supervised && m.pid) kill_group(m.master);
            }
        }
    }

    // A replica that moved to other sockets starts only once its old self
    // has stopped: the two may share a status or probe socket, which php-fpm
    // will not bind twice (and a ping there would reach the old master).
    bool predecessor_running(const Job& j) const {
        for (const Job& k : jobs_) {
            if (&k != &j && k.retiring && k.vhost == j.vhost && k.name() == j.name()) return true;
        }
        return false;
    }

    void start_if_due(Job& j, int64_t now) {
        if (!j.supervised || j.retiring || predecessor_running(j)) return;
        MemberRun& m = j.current();
        if (m.pid || j.failed || now < j.next_start_us) return;
        if (!start_member(j, m, now)) {
            j.next_start_us = now + RestartBackoff::kFirstDelayUs;
            return;
        }
        if (j.ever_started) trusted(j.members[0]).restarts.fetch_add(1);
        j.ever_started = true;
    }

    void check_ready(Job& j, int64_t now) {
        for (MemberRun& m : j.members) {
            if (!m.pid || m.stopping || state(m) != ReplicaState::Starting) {
                if (m.ping && !m.ping_for_health) m.ping.reset();
                continue;
            }
            if (!m.ping || m.ping_for_health) start_ping(m, false, "/ping", kReadyPingUs, now);
            FcgiPingClient::Result result = m.ping->advance(now_us());
            if (result == FcgiPingClient::Result::Pending) continue;
            m.ping.reset();
            if (result != FcgiPingClient::Result::Answered) continue;
            if (&m != &j.current() && j.phase == Job::Phase::Preparing) {
                // Ready on the prepared release; no request is pinned to it
                // until the symlink names it.
                set_state(m, ReplicaState::Ready);
                j.phase = Job::Phase::Prepared;
                set_prepare_state(j, PrepareState::Ready);
                ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s_, FPMRNO(00048)
                             "replica '%s' of %s: a master on release %s (pid %d) is ready for "
                             "the deploy", j.name().c_str(), j.vhost.c_str(), m.release.c_str(),
                             m.pid);
                continue;
            }
            if (&m != &j.current() && j.phase == Job::Phase::StartingNew) {
                // The replacement answers: it takes new requests, the old
                // master gets none from now on and stops once it is empty.
                set_state(m, ReplicaState::Ready);
                set_state(j.current(), ReplicaState::Draining);
                j.phase = Job::Phase::DrainingOld;
                j.phase_deadline_us = now + j.drain_timeout_us;
                ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s_, FPMRNO(00038)
                             "replica '%s' of %s: new master (pid %d) ready, draining the old "
                             "one (pid %d)", j.name().c_str(), j.vhost.c_str(), m.pid,
                             j.current().pid);
                continue;
            }
            set_state(m, ReplicaState::Ready);
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s_, FPMRNO(00030)
                         "replica '%s' of %s (pid %d) is ready", j.name().c_str(), j.vhost.c_str(),
                         m.pid);
        }
    }

    // One replacement at a time: at most one master more than configured.
    void advance_replacement(int64_t now) {
        Job* rolling = nullptr;
        Job* prepared = nullptr;
        for (Job& j : jobs_) {
            if (j.phase == Job::Phase::Prepared) prepared = &j;
            else if (j.phase != Job::Phase::Idle) rolling = &j;
        }
        if (!rolling) {
            for (Job& j : jobs_) {
                // A prepared master is already the one extra: it goes first.
                if (prepared && &j != prepared) continue;
                if (!j.supervised || !j.replace_pending) continue;
                j.replace_pending = false;
                MemberRun& cur = j.current();
                if (j.phase == Job::Phase::Prepared) {
                    if (j.spare().pid && j.spare().release == resolve_release(j.release_symlink)) {
                        // The symlink now names the prepared release: its
                        // master takes over, the current one drains.
                        set_state(cur, ReplicaState::Draining);
                        j.phase = Job::Phase::DrainingOld;
                        j.phase_deadline_us = now + j.drain_timeout_us;
                        set_prepare_state(j, PrepareState::None);
                        rolling = &j;
                        break;
                    }
                    stop_member(j, j.spare(), now);  // prepared for something else
                    set_prepare_state(j, PrepareState::None);
                    j.phase = Job::Phase::Idle;
                    j.replace_pending = true;
                    continue;
                }
                if (j.failed || !cur.pid || state(cur) != ReplicaState::Ready) {
                    // Not serving: a plain (re)start is the replacement.
                    j.failed = false;
                    j.backoff.reset();
                    if (cur.pid) stop_member(j, cur, now);
                    j.next_start_us = now;
                    continue;
                }
                if (j.members.size() < 2) {
                    // A tcp replica has no alternate socket: restart in place.
                    stop_member(j, cur, now);
                    j.next_start_us = now;
                    continue;
                }
                if (!start_member(j, j.spare(), now)) continue;
                j.phase = Job::Phase::StartingNew;
                j.phase_deadline_us = now + kStartTimeoutUs;
                rolling = &j;
                break;
            }
            return;
        }
        Job& j = *rolling;
        if (j.phase == Job::Phase::Preparing && now >= j.phase_deadline_us) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s_, FPMRNO(00049)
                         "replica '%s' of %s: the master prepared on release %s did not answer "
                         "within %ds", j.name().c_str(), j.vhost.c_str(), j.spare().release.c_str(),
                         static_cast<int>(kStartTimeoutUs / 1000000));
            stop_member(j, j.spare(), now);
            set_prepare_state(j, PrepareState::Failed);
            j.phase = Job::Phase::Idle;
        } else if (j.phase == Job::Phase::StartingNew && now >= j.phase_deadline_us) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s_, FPMRNO(00039)
                         "replacement of replica '%s' of %s did not answer within %ds; the "
                         "current master keeps serving", j.name().c_str(), j.vhost.c_str(),
                         static_cast<int>(kStartTimeoutUs / 1000000));
            remember_failed_release(j, j.spare(), now);
            stop_member(j, j.spare(), now);
            j.phase = Job::Phase::Idle;
        } else if (j.phase == Job::Phase::DrainingOld) {
            MemberRun& old = j.current();
            bool empty = in_flight_hint(old) == 0;
            if (!old.stopping && (empty || now >= j.phase_deadline_us)) {
                if (!empty) {
                    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s_, FPMRNO(00040)
                                 "replica '%s' of %s: old master (pid %d) still has %" APR_INT64_T_FMT
                                 " requests after the drain timeout; stopping it anyway",
                                 j.name().c_str(), j.vhost.c_str(), old.pid,
                                 static_cast<apr_int64_t>(in_flight_hint(old)));
                }
                stop_member(j, old, now, true);
            }
        }
    }

    // Every stop escalates: a master asked to stop that is still there when
    // its deadline passes (a request that never ends, a client trickling a
    // body) is killed with its workers, whichever path stopped it.
    void escalate_stops(int64_t now) {
        for (Job& j : jobs_) {
            for (MemberRun& m : j.members) {
                if (!m.pid || !m.stopping || m.kill_at_us == 0 || now < m.kill_at_us) continue;
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s_, FPMRNO(00063)
                             "replica '%s' of %s: master pid %d did not stop within %ds of being "
                             "asked to: killed with its workers", j.name().c_str(), j.vhost.c_str(),
                             m.pid, static_cast<int>((now - m.stop_asked_us) / 1000000));
                kill_group(m.master);
                m.kill_at_us = 0;  // once; its exit is reaped as usual
            }
        }
    }

    // The old master of a replacement has exited: the new one is the replica.
    void finish_replacement(Job& j) {
        j.active = 1 - j.active;
        if (j.namespace_mode()) {
            auto* flag = failed_release_flag(j);
            uint64_t served = release_hash(j.current().release);
            if (flag && flag->load() == served) flag->store(0);
        }
        j.phase = Job::Phase::Idle;
        trusted(j.members[0]).restarts.fetch_add(1);
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s_, FPMRNO(00041)
                     "replica '%s' of %s replaced: pid %d on %s serves", j.name().c_str(),
                     j.vhost.c_str(), j.current().pid, j.current().socket.text().c_str());
    }

    TrustedRelease* release_slot_of(Job& j) {
        int index = shared_.find_release(j.release_symlink);
        return index < 0 ? nullptr : &shared_.trusted_release_rw(index);
    }

    void set_prepare_state(Job& j, PrepareState st) {
        if (TrustedRelease* rs = release_slot_of(j)) rs->prepare_state.store(static_cast<uint32_t>(st));
    }

    // The release a prepare request names, read from the open block as
    // untrusted input: nullopt while it cannot be read consistently. A
    // sequence counter left odd (a child died mid-write, or forged it) is
    // logged once and cleared after kStuckRequestUs, so later requests work.
    std::optional<std::string> read_prepare_request(Job& j, ReleaseSlot& open, int64_t now) {
        std::optional<std::string> text =
            read_locked_string(open.requested_seq, open.requested, kReleaseLength);
        if (text) {
            stuck_requests_.erase(j.release_symlink);
            return text;
        }
        uint32_t seq = open.requested_seq.load();
        auto [it, fresh] = stuck_requests_.try_emplace(j.release_symlink, StuckRequest{seq, now});
        if (fresh || it->second.seq != seq) {
            it->second = StuckRequest{seq, now};
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s_, FPMRNO(00064)
                         "the deploy preparation request of %s cannot be read (its write never "
                         "finished, or the shared memory was written by something else): ignored",
                         j.release_symlink.c_str());
        } else if (now - it->second.since_us >= kStuckRequestUs &&
                   clear_stuck_string(open.requested_seq, seq, open.requested, kReleaseLength)) {
            stuck_requests_.erase(it);
        }
        return std::nullopt;
    }

    // status action=prepare: one master on the requested release, on the
    // spare member of the first replica that does not serve it yet. The
    // request comes from an httpd child: the release is validated again here
    // (the one release validation, and it must be a release of this
    // vhost's symlink) before it becomes a helper's --release.
    void handle_prepare_requests(int64_t now) {
        for (Job& j : jobs_) {
            if (!j.supervised || j.retiring || !j.namespace_mode()) continue;
            int index = shared_.find_release(j.release_symlink);
            if (index < 0) continue;
            TrustedRelease& rs = shared_.trusted_release_rw(index);
            ReleaseSlot& open = shared_.release_slot(index);
            uint32_t requests = open.prepare_requests.load();
            auto seen = prepare_seen_.find(j.release_symlink);
            if (seen == prepare_seen_.end()) {
                prepare_seen_[j.release_symlink] = requests;
                rs.prepare_handled.store(requests);
                continue;
            }
            if (seen->second == requests) continue;
            std::optional<std::string> requested = read_prepare_request(j, open, now);
            if (!requested) continue;
            std::string why;
            std::optional<std::string> valid = validate_prepared_release(j.release_symlink, *requested, &why);
            if (!valid) {
                seen->second = requests;
                rs.prepare_handled.store(requests);
                rs.prepare_state.store(static_cast<uint32_t>(PrepareState::Failed));
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, s_, FPMRNO(00065)
                             "deploy preparation for %s refused: %s", j.vhost.c_str(), why.c_str());
                continue;
            }
            const std::string& target = *valid;
            Job* chosen = nullptr;
            bool busy = false;
            for (Job& k : jobs_) {
                if (!k.supervised || k.retiring || k.release_symlink != j.release_symlink) continue;
                if (k.phase == Job::Phase::Prepared && k.spare().release == target) {
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
            if (chosen && chosen->phase == Job::Phase::Prepared) {
                rs.prepare_state.store(static_cast<uint32_t>(PrepareState::Ready));
                continue;
            }
            if (!chosen) {  // every replica already serves it
                rs.prepare_state.store(static_cast<uint32_t>(PrepareState::Ready));
                continue;
            }
            rs.prepare_state.store(static_cast<uint32_t>(PrepareState::Starting));
            if (chosen->members.size() < 2 || !start_member(*chosen, chosen->spare(), now, &target)) {
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, s_, FPMRNO(00050)
                             "cannot prepare release %s for %s: the replica has no alternate "
                             "socket (tcp:) or its master could not be forked", target.c_str(),
                             j.vhost.c_str());
                rs.prepare_state.store(static_cast<uint32_t>(PrepareState::Failed));
                continue;
            }
            chosen->phase = Job::Phase::Preparing;
            chosen->phase_deadline_us = now + kStartTimeoutUs;
        }
    }

    // php-fpm's graceful stop (SIGQUIT: workers finish their request), and
    // the deadline escalate_stops() kills it at. A master stopped at once
    // (a restart in place, a cancelled prepare, a master not in the plan)
    // gets the drain timeout to finish its requests; one whose requests had
    // that time already (`drained`: a replacement's old master, a removed
    // replica) gets kStopGraceUs more at most, to exit.
    void stop_member(const Job& j, MemberRun& m, int64_t now, bool drained = false) {
        m.ping.reset();
        if (!m.pid) return;
        if (!m.stopping) {
            m.stopping = true;
            m.stop_asked_us = now;
            m.kill_at_us = now + (drained ? std::min(kStopGraceUs, j.drain_timeout_us) : j.drain_timeout_us);
        }
        set_state(m, ReplicaState::Draining);
        signal_master(m.master, SIGQUIT);
    }

    // httpd is stopping: php-fpm's graceful stop for every master, then
    // SIGKILL for whatever is left after its vhost's drain timeout (and,
    // as a last resort, after the longest of them).
    void stop_all() {
        for (Job& j : jobs_) {
            for (MemberRun& m : j.members) stop_member(j, m, now_us());
        }
        int64_t deadline = now_us() + drain_timeout_us_;
        auto running = [&] {
            for (Job& j : jobs_) {
                for (MemberRun& m : j.members) {
                    if (m.pid) return true;
                }
            }
            return false;
        };
        while (running() && now_us() < deadline) {
            reap(now_us());
            escalate_stops(now_us());  // each vhost's own drain timeout
            sleep_us(50000);
        }
        for (Job& j : jobs_) {
            if (!j.supervised) continue;  // someone else's masters: left alone
            for (MemberRun& m : j.members) {
                if (m.pid) {
                    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s_, FPMRNO(00031)
                                 "replica '%s' (pid %d) did not stop within the drain timeout: "
                                 "killed", j.name().c_str(), m.pid);
                    kill_master_and_workers(m.master);
                    if (!m.adopted) ::waitpid(m.pid, nullptr, 0);
                    release(m.master);
                    m.pid = 0;
                }
                trusted(m).pid.store(0);
                set_state(m, ReplicaState::Stopped);
            }
        }
    }

    server_rec* s_;
    std::vector<Job> jobs_;
    int64_t drain_timeout_us_;
    TrustedWriter writer_;      // this process's read-write mapping of the trusted block
    SharedState shared_;        // both blocks; writes the trusted one through writer_
    int plan_fd_;               // our end of the plan channel from the httpd parent; -1 when closed
    pid_t parent_;              // the httpd parent: the only sender whose bytes count
    uid_t parent_uid_;
    long dropped_bytes_ = 0;        // from other senders, since the last FPMR00066
    int64_t dropped_logged_us_ = -1000000;
    PlanFrames plan_frames_;    // what was read from it
    uint32_t generation_seen_ = 0;
    std::map<std::string, uint32_t> prepare_seen_;  // release symlink -> prepare_requests seen
    struct StuckRequest {
        uint32_t seq;      // the odd counter value seen
        int64_t since_us;  // first seen at
    };
    std::map<std::string, StuckRequest> stuck_requests_;  // release symlink -> unreadable request
};

}  // namespace

void run_supervisor(server_rec* s, const SupervisorPlan& plan, int plan_fd, pid_t parent) {
    for (int sig : {SIGHUP, SIGUSR1, SIGWINCH, SIGPIPE}) ::signal(sig, SIG_IGN);
    ::signal(SIGCHLD, SIG_DFL);
    ::signal(SIGTERM, request_stop);
    ::signal(SIGINT, request_stop);
    Supervisor(s, plan, plan_fd, parent).run();
}

}  // namespace fpmr::glue
