// Namespace mode's handler step: just before mod_proxy's handler, a request
// bound for php-fpm gets its paths under the stable path and, where replicas
// are routed by release, waits for one of its release.
#include <cstring>

#include "glue.h"

namespace fpmr::glue {

namespace {

// Handler, REALLY_FIRST (before mod_proxy's, FIRST): in namespace mode,
// switch to php-fpm's view of the paths, and wait for a replica of the
// pinned release when the supervisor is still bringing one up. Here rather
// than in fixups because mod_dir's DirectoryIndex copies a subrequest's
// handler and file name into the main request but not its per-request
// state, after our fixups ran.
int switch_to_stable_paths(request_rec* r) {
    try {
        VhostReplicas* set = replicas_for(r->server);
        RequestState* st = request_state(r, false);
        bool to_balancer = set && r->handler && std::strncmp(r->handler, "proxy:", 6) == 0 &&
                           set->balancer_url == r->handler + 6;
        if (st && st->probe_lane) {
            use_stable_paths(r, st);  // the probe pool runs in the replica's namespace too
            return DECLINED;
        }
        if (!to_balancer) return DECLINED;
        use_stable_paths(r, st);
        if (st && st->release_hash && routes_by_release(set)) {
            int rc = wait_for_release(r, st);
            if (rc != OK) return rc;
        }
    } catch (...) {
    }
    return DECLINED;
}

}  // namespace

void register_stable_path_hooks(apr_pool_t*) {
    ap_hook_handler(switch_to_stable_paths, nullptr, nullptr, APR_HOOK_REALLY_FIRST);
}

}  // namespace fpmr::glue
