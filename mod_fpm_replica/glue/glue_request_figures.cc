// Counts, in the shared figures, each pinned request while it runs (per
// release: what `fpm-replica prune` must not delete under) and each PHP
// answer once it is logged (per release: requests and 5xx for watched
// deploys; per member and release: the duration histogram).
#include "glue.h"

namespace fpmr::glue {

namespace {

apr_status_t end_pinned_request(void* data) {
    auto* st = static_cast<RequestState*>(data);
    end_release_request(shared_state(), st->release_ticket);
    st->release_ticket = ReleaseTicket{};
    return APR_SUCCESS;
}

// post_read_request, after pin_request: the initial request of a pinned
// vhost is in flight on its release until its pool goes.
int count_pinned_request(request_rec* r) {
    try {
        RequestState* st = request_state(r, false);
        ReleaseConfig* release = release_for(r->server);
        if (!st || !st->release_dir || !release || release->shared_slot < 0) return DECLINED;
        st->release_ticket = begin_release_request(shared_state(), release->shared_slot, child_row(),
                                                   st->release_dir, now_us());
        if (st->release_ticket.entry >= 0) {
            apr_pool_cleanup_register(r->pool, st, end_pinned_request, apr_pool_cleanup_null);
        }
    } catch (...) {
    }
    return DECLINED;
}

// log_transaction, for the initial request: the figures of its answer, from
// whichever request of its chain (an internal redirect) went to php-fpm.
int count_answer(request_rec* r) {
    try {
        RequestState* php = nullptr;
        request_rec* last = r;
        for (request_rec* x = r; x; x = x->next) {
            RequestState* st = request_state(x, false);
            if (st && st->bound_for_php) php = st;
            last = x;
        }
        // The supervisor's warm-up requests are not users' answers.
        if (!php || php->warmup_member >= 0) return DECLINED;
        SharedState shared = shared_state();
        RequestState* first = request_state(r, false);
        uint64_t release = first ? first->release_hash : 0;
        if (first) record_release_answer(shared, first->release_ticket, release, last->status);
        if (php->answered_slot >= 0) {
            int64_t now = now_us();
            record_member_duration(shared, php->answered_slot, release,
                                   static_cast<int64_t>(apr_time_now() - r->request_time), now);
        }
    } catch (...) {
    }
    return DECLINED;
}

}  // namespace

void stop_counting_in_release(request_rec* r) {
    for (request_rec* first = r; first; first = first->main ? first->main : first->prev) {
        RequestState* st = request_state(first, false);
        if (!st || st->release_ticket.entry < 0) continue;
        apr_pool_cleanup_run(first->pool, st, end_pinned_request);
    }
}

void register_request_figure_hooks(apr_pool_t*) {
    // APR_HOOK_FIRST: after pin_request (REALLY_FIRST) has pinned it.
    ap_hook_post_read_request(count_pinned_request, nullptr, nullptr, APR_HOOK_FIRST);
    ap_hook_log_transaction(count_answer, nullptr, nullptr, APR_HOOK_MIDDLE);
}

}  // namespace fpmr::glue
