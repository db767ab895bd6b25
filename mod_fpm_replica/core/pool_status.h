// php-fpm's own pool figures (its status page, pm.status_path, asked for
// as JSON on the replica's status= socket), read at scrape time so the
// Prometheus output replaces a php-fpm_exporter sidecar; and the cache in
// the open block that makes concurrent scrapes from every httpd child cost
// one query per replica per second.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace fpmr {

// The figures php-fpm_exporter exports, in its meanings.
enum class PoolFigure : size_t {
    AcceptedConnections,  // "accepted conn": counter
    ListenQueue,          // "listen queue": connections waiting for a worker now
    MaxListenQueue,       // "max listen queue": since the master started
    ListenQueueLength,    // "listen queue len": the socket's backlog size
    IdleProcesses,        // "idle processes"
    ActiveProcesses,      // "active processes"
    TotalProcesses,       // "total processes"
    MaxActiveProcesses,   // "max active processes": since the master started
    MaxChildrenReached,   // "max children reached": counter
    SlowRequests,         // "slow requests": counter (request_slowlog_timeout)
    Count,
};
constexpr size_t kPoolFigures = static_cast<size_t>(PoolFigure::Count);
// The key in php-fpm's JSON status of each figure.
const char* pool_figure_key(PoolFigure figure);

struct PoolStatus {
    uint64_t figures[kPoolFigures] = {};
    uint64_t operator[](PoolFigure f) const { return figures[static_cast<size_t>(f)]; }
};
// php-fpm's `?json` status page; nullopt unless every figure is there as a
// non-negative number (a page that is not php-fpm's status).
std::optional<PoolStatus> parse_pool_status_json(std::string_view body);

// Per member, in the open block: the last answer and who is asking now.
struct PoolStatusCache {
    std::atomic<int64_t> taken_at_us;          // when the last query ended; 0: never
    std::atomic<int64_t> refreshing_until_us;  // a child's query runs until then
    std::atomic<uint32_t> answered;            // 1: the last query got the figures
    std::atomic<uint64_t> figures[kPoolFigures];
};
// How old cached figures may be, and how long one query may take.
constexpr int64_t kPoolStatusMaxAgeUs = 1000000;
constexpr int64_t kPoolStatusTimeoutUs = 250000;

// Whether the caller should query now (it then owns the refresh until
// `now_us + kPoolStatusTimeoutUs`): the cache is older than the max age and
// nobody else is refreshing it.
bool claim_pool_status_refresh(PoolStatusCache& cache, int64_t now_us);
void store_pool_status(PoolStatusCache& cache, const std::optional<PoolStatus>& status, int64_t now_us);
// The cached figures; nullopt when the last query got none (or none yet).
std::optional<PoolStatus> cached_pool_status(const PoolStatusCache& cache);

}  // namespace fpmr
