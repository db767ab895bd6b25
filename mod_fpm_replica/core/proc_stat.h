// One reader of /proc/PID/stat: the fields the module and the supervisor
// need to tell whether a process is alive, whose child it is, and whether it
// is still the same process (a pid is reused; its start time is not).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace fpmr {

struct ProcStat {
    char state = '?';          // R, S, D, Z (zombie), X (dead), ...
    pid_t ppid = 0;
    pid_t pgrp = 0;
    pid_t session = 0;
    uint64_t start_time = 0;   // clock ticks after boot (field 22)

    bool exited() const { return state == 'Z' || state == 'X'; }
};

// Parses the text of /proc/PID/stat. The command name (field 2) is in
// parentheses and may hold anything, spaces and ')' included, so the fields
// are read after the last ')'. nullopt when the text is not of that form.
std::optional<ProcStat> parse_proc_stat(std::string_view text);

// Reads and parses /proc/PID/stat; nullopt when there is no such process.
std::optional<ProcStat> read_proc_stat(pid_t pid);

// Who a php-fpm master is: its pid and its start time. A supervised master
// leads its own session (the supervisor setsid()s it), so its pid is also
// its process group and session id.
struct MasterIdentity {
    pid_t pid = 0;
    uint64_t start_time = 0;
};

// Whether `now` (the /proc/PID/stat of identity.pid, read just now) is that
// master, alive or a zombie: same start time, its own session leader.
bool is_master(const MasterIdentity& identity, const std::optional<ProcStat>& now);

// Whether SIGKILL may go to the process group identity.pid (the master and
// the workers it forked): only while the master is proven there, alive or
// a zombie (is_master), which holds the number. Never for pid <= 1. Once
// the master is gone the number may be reused by a new group leader, so
// what is left of its group is found process by process (is_orphaned_worker).
bool may_signal_group(const MasterIdentity& identity, const std::optional<ProcStat>& now);

// Whether `process` is a worker a gone master left: in the master's own
// session and group, started after the master and not after `gone_at` (the
// start-time clock, when the master was seen gone), so not a process of a
// new session that reused the number later.
bool is_orphaned_worker(const MasterIdentity& master, const ProcStat& process, uint64_t gone_at);

// Now, on the clock of ProcStat::start_time (clock ticks since boot).
uint64_t start_time_clock_now();

}  // namespace fpmr
