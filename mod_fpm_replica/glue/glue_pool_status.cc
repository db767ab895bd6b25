// php-fpm's pool figures for the Prometheus output: one FastCGI GET of the
// status page (`?json`) on a member's status socket, bounded by a short
// timeout, at most once a second per member across every httpd child (the
// cache lives in the open block, core/pool_status.h).
#include <string>

#include "fcgi_ping_client.h"
#include "glue.h"

namespace fpmr::glue {

namespace {

constexpr const char* kDefaultPoolStatusPath = "/fpm-status";

std::optional<PoolStatus> query_pool_status(const SocketSpec& socket, const std::string& path) {
    FcgiRequest request;
    request.path = path;
    request.query = "json";
    int64_t deadline = now_us() + kPoolStatusTimeoutUs;
    FcgiPingClient client(socket, request, deadline);
    wait_for_answer(client, deadline);
    if (!client.answered_ok()) return std::nullopt;
    return parse_pool_status_json(client.body());
}

}  // namespace

std::optional<PoolStatus> pool_status_of(server_rec* s, int slot, const SocketSpec& status_socket) {
    const char* path = server_config(s)->pool_status_path;
    if (!path) path = kDefaultPoolStatusPath;
    SharedState shared = shared_state();
    if (!*path || !shared.valid() || slot < 0 || static_cast<uint32_t>(slot) >= shared.layout().slot_count) {
        return std::nullopt;
    }
    PoolStatusCache& cache = shared.slot(slot).pool_status;
    int64_t now = now_us();
    if (claim_pool_status_refresh(cache, now)) {
        store_pool_status(cache, query_pool_status(status_socket, path), now_us());
    }
    return cached_pool_status(cache);
}

}  // namespace fpmr::glue
