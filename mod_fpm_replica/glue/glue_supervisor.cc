// The replica supervisor process: one per httpd instance, forked by the httpd
// parent (glue_supervisor_launch.cc) at the first start and kept across
// graceful restarts. Its state machine is core's SupervisorEngine; this file
// is the process around it: signals, the channel the httpd parent sends each
// generation's configuration down (a SupervisorPlan per restart), and the
// poll loop that turns the engine.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <thread>

#include "glue.h"
#include "glue_supervisor_world.h"
#include "supervisor_engine.h"
#include "supervisor_plan.h"

namespace fpmr::glue {

namespace {

constexpr int64_t kTickUs = 100000;
// How long the supervisor waits, after it saw httpd restart, for the new
// configuration the parent sends it (sent a moment after the restart is
// announced in the shared block).
constexpr int64_t kPlanWaitUs = 3 * 1000000LL;
// Reads of the plan channel per turn of the loop.
constexpr int kPlanReadsPerTurn = 16;

volatile sig_atomic_t g_stop_requested = 0;
void request_stop(int) { g_stop_requested = 1; }

// Masters starting at once: php-fpm's start is mostly CPU work, a few per
// core keep a small host responsive while hundreds of sites roll.
int max_masters_starting() {
    unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    return static_cast<int>(std::max(4u, 4 * cores));
}

// The supervisor's end of the channel from the httpd parent. Only bytes the
// parent itself sent count: an httpd child inherited the parent's end
// before it closed it, and anything it writes is dropped unread.
class PlanChannel {
public:
    // `slot_count`: the slots of the shared blocks, which every member of
    // a plan must index.
    PlanChannel(server_rec* s, int fd, pid_t parent, uint32_t slot_count)
        : s_(s), plan_fd_(fd), parent_(parent), parent_uid_(::getuid()), plan_frames_(slot_count) {}

    // The plan for `generation` from the parent; nullopt if none arrives in
    // time. Older or unreadable frames are skipped.
    std::optional<SupervisorPlan> receive(uint32_t generation) {
        int64_t deadline = now_us() + kPlanWaitUs;
        for (;;) {
            std::optional<SupervisorPlan> plan;
            while (plan_frames_.next(&plan)) {
                if (plan && plan->generation == generation) return plan;
            }
            if (plan_frames_.broken()) close();
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
                close();  // the parent gave up on the channel
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
    void drain() {
        for (int reads = 0; plan_fd_ >= 0 && reads < kPlanReadsPerTurn; ++reads) {
            char buffer[65536];
            bool from_parent = false;
            ssize_t n = read_plan_bytes(buffer, sizeof buffer, &from_parent);
            if (n > 0) {
                if (from_parent) plan_frames_.append(buffer, static_cast<size_t>(n));
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
            close();  // the parent gave up on the channel
        }
    }

    // Closed for good: the parent's next send fails, and it replaces this
    // supervisor by one forked with the new configuration (FPMR00068).
    void close() {
        if (plan_fd_ >= 0) ::close(plan_fd_);
        plan_fd_ = -1;
        plan_frames_.clear();
    }

private:
    server_rec* s_;
    int plan_fd_;               // our end of the plan channel; -1 when closed
    pid_t parent_;              // the httpd parent: the only sender whose bytes count
    uid_t parent_uid_;
    long dropped_bytes_ = 0;    // from other senders, since the last FPMR00066
    int64_t dropped_logged_us_ = -1000000;
    PlanFrames plan_frames_;    // what was read from it
};

[[noreturn]] void supervise(server_rec* s, const SupervisorPlan& plan, int plan_fd, pid_t parent) {
    TrustedWriter writer;  // this process's read-write mapping of the trusted block
    SharedState shared = writer.state();
    SteadyClock clock;
    SystemMasters masters(s);
    SocketPings pings;
    HttpdLogSink log(s);
    KernelRandom random;
    SupervisorEngine engine(plan, shared, SupervisorWorld{clock, masters, pings, log, random},
                            SupervisorEngine::Limits{max_masters_starting()});
    PlanChannel channel(s, plan_fd, parent, shared.layout().slot_count);
    uint32_t generation_seen = shared.config_generation();
    engine.adopt_running_masters();
    while (!g_stop_requested) {
        channel.drain();
        uint32_t generation = shared.config_generation();
        if (generation != generation_seen) {
            generation_seen = generation;
            engine.on_httpd_restart(channel.receive(generation));
        }
        engine.turn();
        pings.wait(kTickUs);
    }
    // httpd is stopping: php-fpm's graceful stop for every master, then
    // SIGKILL for whatever is left after its vhost's drain timeout (and, as a
    // last resort, after the longest of them).
    engine.begin_stop();
    int64_t deadline = now_us() + engine.stop_timeout_us();
    while (engine.any_running() && now_us() < deadline) {
        engine.turn_stopping();
        timespec ts{0, 50 * 1000 * 1000};
        ::nanosleep(&ts, nullptr);
    }
    engine.kill_remaining();
    ::_exit(0);
}

}  // namespace

void run_supervisor(server_rec* s, const SupervisorPlan& plan, int plan_fd, pid_t parent) {
    for (int sig : {SIGHUP, SIGUSR1, SIGWINCH, SIGPIPE}) ::signal(sig, SIG_IGN);
    ::signal(SIGCHLD, SIG_DFL);
    ::signal(SIGTERM, request_stop);
    ::signal(SIGINT, request_stop);
    supervise(s, plan, plan_fd, parent);
}

}  // namespace fpmr::glue
