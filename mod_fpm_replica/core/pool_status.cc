#include "pool_status.h"

#include <nlohmann/json.hpp>

namespace fpmr {

const char* pool_figure_key(PoolFigure figure) {
    switch (figure) {
        case PoolFigure::AcceptedConnections: return "accepted conn";
        case PoolFigure::ListenQueue: return "listen queue";
        case PoolFigure::MaxListenQueue: return "max listen queue";
        case PoolFigure::ListenQueueLength: return "listen queue len";
        case PoolFigure::IdleProcesses: return "idle processes";
        case PoolFigure::ActiveProcesses: return "active processes";
        case PoolFigure::TotalProcesses: return "total processes";
        case PoolFigure::MaxActiveProcesses: return "max active processes";
        case PoolFigure::MaxChildrenReached: return "max children reached";
        case PoolFigure::SlowRequests: return "slow requests";
        case PoolFigure::Count: break;
    }
    return "";
}

std::optional<PoolStatus> parse_pool_status_json(std::string_view body) {
    // No exceptions: this runs in httpd's request threads.
    nlohmann::json doc = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return std::nullopt;
    PoolStatus status;
    for (size_t i = 0; i < kPoolFigures; ++i) {
        auto it = doc.find(pool_figure_key(static_cast<PoolFigure>(i)));
        // JSON's non-negative integers parse as unsigned.
        if (it == doc.end() || !it->is_number_unsigned()) return std::nullopt;
        status.figures[i] = it->get<uint64_t>();
    }
    return status;
}

bool claim_pool_status_refresh(PoolStatusCache& cache, int64_t now_us) {
    // Forged times (the block is the children's) neither overflow nor stop
    // refreshes: a time in the future counts as old.
    int64_t taken = cache.taken_at_us.load(std::memory_order_acquire);
    if (taken > 0 && taken <= now_us && now_us - taken < kPoolStatusMaxAgeUs) return false;
    int64_t until = cache.refreshing_until_us.load();
    if (until > now_us && until - now_us <= kPoolStatusTimeoutUs) return false;  // someone asks now
    return cache.refreshing_until_us.compare_exchange_strong(until, now_us + kPoolStatusTimeoutUs);
}

void store_pool_status(PoolStatusCache& cache, const std::optional<PoolStatus>& status, int64_t now_us) {
    if (status) {
        for (size_t i = 0; i < kPoolFigures; ++i) {
            cache.figures[i].store(status->figures[i], std::memory_order_relaxed);
        }
    }
    cache.answered.store(status ? 1 : 0, std::memory_order_relaxed);
    cache.taken_at_us.store(now_us, std::memory_order_release);
    cache.refreshing_until_us.store(0);
}

std::optional<PoolStatus> cached_pool_status(const PoolStatusCache& cache) {
    if (cache.taken_at_us.load(std::memory_order_acquire) == 0 ||
        !cache.answered.load(std::memory_order_relaxed)) {
        return std::nullopt;
    }
    PoolStatus status;
    for (size_t i = 0; i < kPoolFigures; ++i) status.figures[i] = cache.figures[i].load(std::memory_order_relaxed);
    return status;
}

}  // namespace fpmr
