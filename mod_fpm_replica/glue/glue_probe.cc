// The probe lane (FpmReplicaProbe): a request for the probe path goes to a
// usable replica's probe pool, or is answered from its status socket's ping.
//
// The probe pool (probe=) is small and dedicated, so a load balancer's or
// Kubernetes' probe runs the application's own health script without
// queueing behind busy workers; the ping is served by php-fpm even when
// every worker is busy. 503 while the vhost has no usable replica, so a fleet
// load balancer takes the host out.
#include <cstring>
#include <string>

#include "glue.h"
#include "selection.h"

namespace fpmr::glue {

namespace {

constexpr const char* kProbeHandler = "fpm-replica-probe";
constexpr int kProbePingTimeoutMs = 250;

// fixups, MIDDLE: after SetHandler (core, REALLY_FIRST), before the
// fpm-replica handler is mapped to the balancer (LAST).
int route_probe(request_rec* r) {
    try {
        if (r->main) return DECLINED;
        ServerConfig* conf = server_config(r->server);
        if (!conf->probe_path || !r->uri || std::strcmp(r->uri, conf->probe_path) != 0) {
            return DECLINED;
        }
        VhostReplicas* set = replicas_for(r->server);
        SharedState shared = shared_state();
        if (!set || !shared.valid()) return DECLINED;
        RequestState* st = request_state(r, true);
        // The same rule and release pin as steering (selection.h usable()).
        uint64_t pin = pinned_release(st);
        int64_t now = now_us();
        int with_probe = -1, any = -1;
        int64_t least = 0;
        for (size_t i = 0; i < set->members.size(); ++i) {
            const ReplicaMember& m = set->members[i];
            if (m.slot < 0) continue;
            Candidate c = candidate_of(shared, m.slot, false);
            if (!takes_requests(usable(c, now, pin))) continue;
            if (any < 0) any = static_cast<int>(i);
            if (m.probe && (with_probe < 0 || c.in_flight < least)) {
                with_probe = static_cast<int>(i);
                least = c.in_flight;
            }
        }
        if (any < 0) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, FPMRNO(00046)
                          "probe %s: no usable replica in %s: 503", r->uri,
                          set->vhost_label.c_str());
            return HTTP_SERVICE_UNAVAILABLE;
        }
        if (with_probe >= 0) {
            const ReplicaMember& m = set->members[with_probe];
            std::string handler = "proxy:" + probe_proxy_url(m);
            r->handler = apr_pstrdup(r->pool, handler.c_str());
            st->probe_lane = true;
            apr_table_setn(r->notes, "fpm-replica", set->replicas[m.replica].name.c_str());
            return OK;
        }
        st->probe_member = any;
        r->handler = kProbeHandler;
        return OK;
    } catch (...) {
        return DECLINED;
    }
}

// Without a probe pool: the replica's status socket (or main socket) answers
// a FastCGI ping, which php-fpm serves even when every worker is busy.
int probe_handler(request_rec* r) {
    if (!r->handler || std::strcmp(r->handler, kProbeHandler) != 0) return DECLINED;
    try {
        VhostReplicas* set = replicas_for(r->server);
        RequestState* st = request_state(r, false);
        if (!set || !st || st->probe_member < 0) return HTTP_SERVICE_UNAVAILABLE;
        const ReplicaMember& m = set->members[st->probe_member];
        const HealthCheckSpec* health = server_config(r->server)->health;
        bool ok = answers_ping(m.status ? *m.status : m.socket, kProbePingTimeoutMs,
                               health ? health->path : "/ping");
        if (!ok) return HTTP_SERVICE_UNAVAILABLE;
        ap_set_content_type(r, "text/plain");
        apr_table_setn(r->headers_out, "Cache-Control", "no-store");
        if (!r->header_only) {
            std::string body = "ok " + set->replicas[m.replica].name + "\n";
            ap_rwrite(body.data(), static_cast<int>(body.size()), r);
        }
        return OK;
    } catch (...) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
}

}  // namespace

void register_probe_hooks(apr_pool_t*) {
    ap_hook_fixups(route_probe, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_handler(probe_handler, nullptr, nullptr, APR_HOOK_MIDDLE);
}

}  // namespace fpmr::glue
