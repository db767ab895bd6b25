// The supervisor's hold on the php-fpm masters it signals: every signal goes
// through here, to a process proven to be the master that was started or
// adopted (a pidfd, plus its start time and session), never to pid 1 or to
// a process group that is not that master's own.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

#include "proc_stat.h"

namespace fpmr::glue {

struct MasterHandle {
    MasterIdentity identity;
    int pidfd = -1;  // -1 where the kernel has no pidfd_open (< 5.3)

    pid_t pid() const { return identity.pid; }
};

// Right after fork(), for our own child (it cannot be reaped, so its pid
// cannot be reused, before we hold it).
MasterHandle hold_child(pid_t child);
// A master a dead supervisor left, from its pid and start time in the
// trusted block: nullopt unless that process is still that master.
std::optional<MasterHandle> hold_adopted(pid_t pid, uint64_t start_time);
void release(MasterHandle& master);

// Whether the master has exited (a zombie counts as exited).
bool exited(const MasterHandle& master);
// One signal to the master itself; false when it is not (or no longer) it.
bool signal_master(const MasterHandle& master, int sig);
// SIGKILL to the master's process group (its workers too), under
// may_signal_group's rule; false when refused or nothing was there.
bool kill_group(const MasterHandle& master);
// For a master that is gone for good (reaped by someone else): SIGKILL to
// each worker it left (is_orphaned_worker), one by one through pidfds.
// Returns how many.
int kill_orphaned_workers(const MasterHandle& master);
// kill_group while the master holds its number, else kill_orphaned_workers.
void kill_master_and_workers(const MasterHandle& master);

}  // namespace fpmr::glue
