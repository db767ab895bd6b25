// Steering inside mod_proxy: `SetHandler fpm-replica` becomes the vhost's
// balancer in fixups, our lbmethod picks the replica (least in flight, ties
// rotate), and every attempt's in-flight count is returned exactly once:
// at failover, at the end of the proxy handler, or when the request pool dies.
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>

#include "glue.h"
#include "selection.h"
#include "warmup_urls.h"

namespace fpmr::glue {

namespace {

constexpr const char* kHandlerName = "fpm-replica";

APR_OPTIONAL_FN_TYPE(proxy_balancer_get_best_worker)* get_best_worker_fn = nullptr;

bool is_idempotent(const request_rec* r) {
    switch (r->method_number) {
        case M_GET: case M_PUT: case M_DELETE: case M_OPTIONS: case M_TRACE:
            return true;
        default:
            return false;
    }
}

struct FinderBaton {
    RequestState* st;
    SharedState shared;
    uint64_t pinned_release;  // namespace mode: only members serving it; else 0
    int64_t now;
    int best_index;
    Candidate best;
};

// mod_proxy's get_best_worker has already skipped workers that mod_proxy
// itself holds in error or draining; we add our shared view on top.
int is_better(proxy_worker* current, proxy_worker*, void* baton_v) {
    auto* baton = static_cast<FinderBaton*>(baton_v);
    int index = baton->st->set->member_of_route(current->s->route);
    if (index < 0) return 0;  // a member we did not declare (balancer-manager?)
    if (baton->st->warmup_member >= 0) {
        // The warm-up's request goes to the starting master it names, and
        // only there.
        if (index != baton->st->warmup_member || baton->best_index >= 0) return 0;
        baton->best_index = index;
        return 1;
    }
    int slot = baton->st->set->members[index].slot;
    if (slot < 0) return 0;
    Candidate c = candidate_of(baton->shared, slot, (baton->st->tried_mask >> index) & 1u);
    if (!takes_requests(usable(c, baton->now, baton->pinned_release))) return 0;
    if (baton->best_index >= 0 && !prefer(c, baton->best)) return 0;
    baton->best_index = index;
    baton->best = c;
    return 1;
}

// post_read_request, REALLY_FIRST: the supervisor's warm-up header
// (core/warmup_urls) comes off every request whatever it says, before any
// module reads the headers, so PHP, CGI or another backend never sees it;
// internal redirects share this table and subrequests copy it later. Its
// value stays with the request for the finder.
int take_warmup_header(request_rec* r) {
    try {
        const char* value = apr_table_get(r->headers_in, kWarmupHeader);
        if (!value) return DECLINED;
        request_state(r, true)->warmup_header = apr_pstrdup(r->pool, value);
        apr_table_unset(r->headers_in, kWarmupHeader);
    } catch (...) {
    }
    return DECLINED;
}

// The member a warm-up request is for, or -1: the header its initial
// request came with (a DirectoryIndex subrequest, a rewrite to a front
// controller are the same request), naming a member of this vhost whose
// trusted slot holds exactly that token now.
int warmup_member_of(request_rec* r, const RequestState* st, const SharedState& shared) {
    const char* value = nullptr;
    for (request_rec* up = r; up && !value; up = up->main ? up->main : up->prev) {
        const RequestState* s = request_state(up, false);
        if (s) value = s->warmup_header;
    }
    if (!value) return -1;
    std::optional<WarmupHeader> header =
        parse_warmup_header(value, static_cast<int>(shared.layout().slot_count));
    if (!header) return -1;
    for (size_t i = 0; i < st->set->members.size(); ++i) {
        if (st->set->members[i].slot == header->slot &&
            warmup_token_admits(shared.trusted(header->slot), header->token)) {
            return static_cast<int>(i);
        }
    }
    return -1;
}

void log_no_usable(request_rec* r, RequestState* st, SharedState shared, int64_t now) {
    std::string reasons;
    for (size_t i = 0; i < st->set->members.size(); ++i) {
        const ReplicaMember& m = st->set->members[i];
        if (m.slot < 0) continue;
        Candidate c = candidate_of(shared, m.slot, (st->tried_mask >> i) & 1u);
        // An idle alternate member is not news: say so only when it matters.
        if (m.alternate && c.state == ReplicaState::Stopped) continue;
        if (!reasons.empty()) reasons += ", ";
        reasons += m.route + " " + usability_reason(usable(c, now, pinned_release(st)), c.state);
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FPMRNO(00009)
                  "no usable replica for %s (%s): answering 503",
                  st->set->vhost_label.c_str(), reasons.c_str());
}

apr_status_t finish_on_pool_cleanup(void* data) {
    auto* st = static_cast<RequestState*>(data);
    finish_attempt(st, nullptr, false);
    return APR_SUCCESS;
}

proxy_worker* find_replica(proxy_balancer* balancer, request_rec* r) {
    try {
        RequestState* st = request_state(r, true);
        SharedState shared = shared_state();
        if (!st->set || !shared.valid() || !get_best_worker_fn) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FPMRNO(00010)
                          "%s is not a balancer of an FpmReplica virtual host",
                          balancer->s->name);
            return nullptr;
        }
        if (st->current >= 0 && st->warmup_member >= 0) {
            // A warm-up request is for one master: not replayed elsewhere.
            finish_attempt(st, r, true);
            return nullptr;
        }
        if (st->current >= 0) {
            // Called again for the same request: mod_proxy is failing over
            // because the attempt in progress got a 503 from the backend.
            int failed = st->current;
            bool reached_php = !st->gateway_env_preexisting &&
                               apr_table_get(r->subprocess_env, "GATEWAY_INTERFACE");
            finish_attempt(st, r, true);
            if (reached_php && !is_idempotent(r)) {
                ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FPMRNO(00011)
                              "replica '%s' failed after receiving a %s request; not "
                              "replaying it on another replica",
                              st->set->members[failed].route.c_str(), r->method);
                return nullptr;
            }
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, FPMRNO(00012)
                          "replica '%s' failed before answering; trying another replica",
                          st->set->members[failed].route.c_str());
        } else {
            st->gateway_env_preexisting = apr_table_get(r->subprocess_env, "GATEWAY_INTERFACE") != nullptr;
            if (st->tried_mask == 0) st->warmup_member = warmup_member_of(r, st, shared);
        }

        FinderBaton baton{st, shared, pinned_release(st), now_us(), -1, {}};
        proxy_worker* worker = get_best_worker_fn(balancer, r, is_better, &baton);
        if (!worker || baton.best_index < 0) {
            log_no_usable(r, st, shared, baton.now);
            return nullptr;
        }
        const ReplicaMember& chosen = st->set->members[baton.best_index];
        ReplicaSlot& slot = shared.slot(chosen.slot);
        shared.begin_attempt(chosen.slot, child_row());
        slot.requests.fetch_add(1, std::memory_order_relaxed);
        slot.last_pick.store(shared.block()->header.pick_sequence.fetch_add(1) + 1,
                             std::memory_order_relaxed);
        if (st->current < 0 && st->tried_mask == 0) {
            apr_pool_cleanup_register(r->pool, st, finish_on_pool_cleanup, apr_pool_cleanup_null);
        }
        st->current = baton.best_index;
        apr_table_setn(r->notes, "fpm-replica", st->set->replicas[chosen.replica].name.c_str());
        return worker;
    } catch (...) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FPMRNO(00013)
                      "internal error while choosing a replica");
        return nullptr;
    }
}

apr_status_t lb_reset(proxy_balancer*, server_rec*) { return APR_SUCCESS; }
apr_status_t lb_age(proxy_balancer*, server_rec*) { return APR_SUCCESS; }

const proxy_balancer_method fpm_replica_lbmethod = {
    kLbMethodName, find_replica, nullptr, lb_reset, lb_age, nullptr,
};

// mod_proxy's request_status hook: the proxy handler is done with the
// backend, so the attempt in progress ends here (not when the response has
// been written out to a slow client).
int on_proxy_request_status(int* status, request_rec* r) {
    try {
        RequestState* st = request_state(r, false);
        if (st && st->current >= 0) finish_attempt(st, r, *status == HTTP_SERVICE_UNAVAILABLE);
    } catch (...) {
    }
    return DECLINED;
}

// SetHandler fpm-replica becomes the vhost's balancer, handled by mod_proxy.
int map_handler_to_balancer(request_rec* r) {
    try {
        if (!r->handler || std::strcmp(r->handler, kHandlerName) != 0) return DECLINED;
        VhostReplicas* set = replicas_for(r->server);
        if (!set) return DECLINED;  // fpm_replica_handler reports it
        request_state(r, true)->bound_for_php = true;
        r->handler = apr_pstrcat(r->pool, "proxy:", set->balancer_url.c_str(), NULL);
        return OK;
    } catch (...) {
        return DECLINED;
    }
}

// Reached only when fixups could not map the request to a balancer.
int fpm_replica_handler(request_rec* r) {
    if (!r->handler || std::strcmp(r->handler, kHandlerName) != 0) return DECLINED;
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FPMRNO(00014)
                  "SetHandler fpm-replica used for %s, but this virtual host declares no "
                  "FpmReplica", r->uri);
    return HTTP_INTERNAL_SERVER_ERROR;
}

int retrieve_proxy_functions(apr_pool_t*, apr_pool_t*, apr_pool_t*, server_rec* s) {
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) return OK;
    get_best_worker_fn = APR_RETRIEVE_OPTIONAL_FN(proxy_balancer_get_best_worker);
    if (!get_best_worker_fn) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, FPMRNO(00015)
                     "mod_proxy must be loaded for mod_fpm_replica (LoadModule proxy_module)");
        return !OK;
    }
    return OK;
}

}  // namespace

RequestState* request_state(request_rec* r, bool create) {
    auto* st = static_cast<RequestState*>(ap_get_module_config(r->request_config, &fpm_replica_module));
    if (st || !create) return st;
    // Trivially destructible: the pool frees it without running a destructor.
    static_assert(std::is_trivially_destructible<RequestState>::value, "pool-owned");
    st = new (apr_palloc(r->pool, sizeof(RequestState))) RequestState();
    st->set = replicas_for(r->server);
    ap_set_module_config(r->request_config, &fpm_replica_module, st);
    return st;
}

void finish_attempt(RequestState* st, request_rec* r, bool failed) {
    if (!st || st->current < 0) return;
    int index = st->current;
    st->current = -1;
    st->tried_mask |= uint64_t{1} << index;
    SharedState shared = shared_state();
    const ReplicaMember& member = st->set->members[index];
    int slot_index = member.slot;
    if (!shared.valid() || slot_index < 0) return;
    ReplicaSlot& slot = shared.slot(slot_index);
    shared.end_attempt(slot_index, child_row());
    if (!failed) st->answered_slot = slot_index;
    if (failed) {
        slot.failures.fetch_add(1, std::memory_order_relaxed);
        slot.retry_at_us.store(now_us() + kRefusedRetryUs);
        if (r) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, FPMRNO(00016)
                          "replica '%s' of %s failed a request; leaving it out of rotation "
                          "for %" APR_INT64_T_FMT "ms",
                          member.route.c_str(), st->set->vhost_label.c_str(),
                          static_cast<apr_int64_t>(kRefusedRetryUs / 1000));
        }
    } else if (r && slot.retry_at_us.load(std::memory_order_relaxed) != 0) {
        slot.retry_at_us.store(0);
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, FPMRNO(00017)
                      "replica '%s' of %s answers again; back in rotation",
                      member.route.c_str(), st->set->vhost_label.c_str());
    }
}

void register_steering_hooks(apr_pool_t* p) {
    ap_register_provider(p, PROXY_LBMETHOD, kLbMethodName, "0", &fpm_replica_lbmethod);
    // After mod_proxy registered its optional functions (it does so in its
    // own register_hooks, so any post_config can retrieve them).
    ap_hook_post_config(retrieve_proxy_functions, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_post_read_request(take_warmup_header, nullptr, nullptr, APR_HOOK_REALLY_FIRST);
    // Last, so SetHandler (core fixups) and mod_rewrite have set r->handler.
    ap_hook_fixups(map_handler_to_balancer, nullptr, nullptr, APR_HOOK_LAST);
    ap_hook_handler(fpm_replica_handler, nullptr, nullptr, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(proxy, request_status, on_proxy_request_status, nullptr, nullptr,
                      APR_HOOK_MIDDLE);
}

}  // namespace fpmr::glue
