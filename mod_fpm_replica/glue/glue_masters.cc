// Signals to php-fpm masters through pidfds and proven identities.
#include "glue_masters.h"

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace fpmr::glue {

namespace {

int pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

// PIDFD_SIGNAL_PROCESS_GROUP of <linux/pidfd.h> (Linux 6.9); Debian 12's
// headers predate it.
constexpr unsigned kPidfdSignalProcessGroup = 1u << 2;

int pidfd_send_signal(int pidfd, int sig, unsigned flags = 0) {
#ifdef SYS_pidfd_send_signal
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, flags));
#else
    (void)pidfd;
    (void)sig;
    (void)flags;
    errno = ENOSYS;
    return -1;
#endif
}

}  // namespace

MasterHandle hold_child(pid_t child) {
    MasterHandle m;
    m.identity.pid = child;
    if (std::optional<ProcStat> st = read_proc_stat(child)) m.identity.start_time = st->start_time;
    m.pidfd = pidfd_open(child);
    return m;
}

std::optional<MasterHandle> hold_adopted(pid_t pid, uint64_t start_time) {
    MasterHandle m;
    m.identity = {pid, start_time};
    if (!is_master(m.identity, read_proc_stat(pid))) return std::nullopt;
    m.pidfd = pidfd_open(pid);
    // Proven once more with the descriptor held: from here on the pidfd
    // names this process whatever happens to the number.
    if (!is_master(m.identity, read_proc_stat(pid)) || exited(m)) {
        release(m);
        return std::nullopt;
    }
    return m;
}

void release(MasterHandle& master) {
    if (master.pidfd >= 0) ::close(master.pidfd);
    master.pidfd = -1;
}

bool exited(const MasterHandle& master) {
    if (master.pidfd >= 0) {
        pollfd p{master.pidfd, POLLIN, 0};
        return ::poll(&p, 1, 0) > 0;  // readable once the process has exited
    }
    std::optional<ProcStat> st = read_proc_stat(master.pid());
    return !is_master(master.identity, st) || st->exited();
}

bool signal_master(const MasterHandle& master, int sig) {
    if (master.pid() <= 1) return false;
    if (master.pidfd >= 0) return pidfd_send_signal(master.pidfd, sig) == 0;
    if (!is_master(master.identity, read_proc_stat(master.pid()))) return false;
    return ::kill(master.pid(), sig) == 0;
}

bool kill_group(const MasterHandle& master) {
    if (!may_signal_group(master.identity, read_proc_stat(master.pid()))) return false;
    // Proven a session leader, whose group cannot change: through its pidfd
    // (Linux 6.9+) the signal goes to that group whatever happens to the
    // number meanwhile; older kernels refuse the flag, and kill(-pid) follows
    // the check just made.
    if (master.pidfd >= 0) {
        int r = pidfd_send_signal(master.pidfd, SIGKILL, kPidfdSignalProcessGroup);
        if (r == 0) return true;
        if (errno != EINVAL) return false;  // gone meanwhile
    }
    return ::kill(-master.pid(), SIGKILL) == 0;
}

int kill_orphaned_workers(const MasterHandle& master) {
    uint64_t gone_at = start_time_clock_now();
    DIR* proc = ::opendir("/proc");
    if (!proc) return 0;
    int killed = 0;
    while (dirent* e = ::readdir(proc)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
        std::optional<ProcStat> st = read_proc_stat(pid);
        if (!st || !is_orphaned_worker(master.identity, *st, gone_at)) continue;
        // Held, then proven again: the number cannot change under the pidfd.
        int pidfd = pidfd_open(pid);
        if (pidfd < 0) continue;
        std::optional<ProcStat> again = read_proc_stat(pid);
        if (again && again->start_time == st->start_time &&
            is_orphaned_worker(master.identity, *again, gone_at) &&
            pidfd_send_signal(pidfd, SIGKILL) == 0) {
            ++killed;
        }
        ::close(pidfd);
    }
    ::closedir(proc);
    return killed;
}

void kill_master_and_workers(const MasterHandle& master) {
    if (!kill_group(master)) kill_orphaned_workers(master);
}

}  // namespace fpmr::glue
