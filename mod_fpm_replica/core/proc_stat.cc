// /proc/PID/stat, read once and parsed in one place.
#include "proc_stat.h"

#include <fcntl.h>
#include <unistd.h>

#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace fpmr {

namespace {

// The next space-separated field of `rest`, advancing it; empty at the end.
std::string_view next_field(std::string_view& rest) {
    size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) {
        rest = {};
        return {};
    }
    rest.remove_prefix(start);
    size_t end = rest.find(' ');
    std::string_view field = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
    return field;
}

bool to_number(std::string_view field, long long* out) {
    if (field.empty() || field.size() > 20) return false;
    std::string text(field);
    char* end = nullptr;
    long long value = std::strtoll(text.c_str(), &end, 10);
    if (*end != '\0') return false;
    *out = value;
    return true;
}

}  // namespace

std::optional<ProcStat> parse_proc_stat(std::string_view text) {
    size_t close = text.rfind(')');
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view rest = text.substr(close + 1);
    while (!rest.empty() && (rest.back() == '\n' || rest.back() == ' ')) rest.remove_suffix(1);
    // Field 3 is the state; fields 4, 5, 6 ppid, pgrp, session; field 22 the start time.
    ProcStat st;
    std::string_view state = next_field(rest);
    if (state.size() != 1) return std::nullopt;
    st.state = state[0];
    long long values[19];
    for (int i = 0; i < 19; ++i) {  // fields 4 .. 22
        if (!to_number(next_field(rest), &values[i])) return std::nullopt;
    }
    st.ppid = static_cast<pid_t>(values[0]);
    st.pgrp = static_cast<pid_t>(values[1]);
    st.session = static_cast<pid_t>(values[2]);
    if (values[18] < 0) return std::nullopt;
    st.start_time = static_cast<uint64_t>(values[18]);
    return st;
}

std::optional<ProcStat> read_proc_stat(pid_t pid) {
    if (pid <= 0) return std::nullopt;
    char path[32];
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    char buffer[1024];
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    ::close(fd);
    if (n <= 0) return std::nullopt;
    return parse_proc_stat(std::string_view(buffer, static_cast<size_t>(n)));
}

bool is_master(const MasterIdentity& identity, const std::optional<ProcStat>& now) {
    return identity.pid > 1 && identity.start_time != 0 && now &&
           now->start_time == identity.start_time && now->session == identity.pid &&
           now->pgrp == identity.pid;
}

bool may_signal_group(const MasterIdentity& identity, const std::optional<ProcStat>& now) {
    return identity.pid > 1 && is_master(identity, now);
}

bool is_orphaned_worker(const MasterIdentity& master, const ProcStat& process, uint64_t gone_at) {
    return master.pid > 1 && master.start_time != 0 && process.session == master.pid &&
           process.pgrp == master.pid && process.start_time >= master.start_time &&
           process.start_time <= gone_at && !process.exited();
}

uint64_t start_time_clock_now() {
    timespec ts{};
    ::clock_gettime(CLOCK_BOOTTIME, &ts);
    long ticks = ::sysconf(_SC_CLK_TCK);
    if (ticks <= 0) ticks = 100;
    return static_cast<uint64_t>(ts.tv_sec) * static_cast<uint64_t>(ticks) +
           static_cast<uint64_t>(ts.tv_nsec) / (1000000000ull / static_cast<uint64_t>(ticks));
}

}  // namespace fpmr
