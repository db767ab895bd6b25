// Each httpd child's share of the in-flight counts: a row of the open block
// the child takes in child_init and the httpd parent gives back when the
// child exits (the MPM's child_status hook, run in the parent for every
// child it reaps), so a child killed mid-request (SIGKILL, the OOM killer, a
// crash) leaves no count behind to starve a replica or hold up a drain.
#include <unistd.h>

#include <set>
#include <string>

#include "glue.h"

namespace fpmr::glue {

namespace {

// This child's row of the open block; -1 in the parent, in a child that
// found every row taken, and before child_init.
int g_child_row = -1;

bool any_replicas(server_rec* main_server) {
    for (server_rec* s = main_server; s; s = s->next) {
        if (replicas_for(s)) return true;
    }
    return false;
}

// child_init: before the child takes any request, so every attempt it runs
// is counted in its row.
void claim_row(apr_pool_t*, server_rec* s) {
    try {
        SharedState shared = shared_state();
        if (!shared.valid()) return;
        g_child_row = shared.claim_child_row(static_cast<int32_t>(getpid()));
        if (g_child_row < 0 && any_replicas(s)) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, FPMRNO(00161)
                         "httpd child pid %d found all %u in-flight rows taken (children of "
                         "older generations still running?): its requests are counted, but "
                         "would not be released if it died mid-request",
                         static_cast<int>(getpid()), shared.layout().child_row_count);
        }
    } catch (...) {
    }
}

void log_release(server_rec* s, const SharedState::Released& released, const char* whose) {
    if (released.requests > 0) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, FPMRNO(00162)
                     "%s with %" APR_INT64_T_FMT " requests in flight: their in-flight "
                     "counts are released", whose, static_cast<apr_int64_t>(released.requests));
    }
    if (!released.complete) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, FPMRNO(00163)
                     "%s: an in-flight count kept changing while it was released (forged "
                     "shared memory?); part of it is left as it was", whose);
    }
}

// child_status, in the httpd parent: the MPM has reaped child `pid` (any
// exit: idle, MaxConnectionsPerChild, graceful, killed). Keyed by pid, not
// by `slot`: a threaded MPM may have given the slot to a newer child, and
// reports a child without one as slot -1.
void release_exited_child(server_rec* s, pid_t pid, ap_generation_t, int,
                          mpm_child_status status) {
    if (status != MPM_CHILD_EXITED || pid <= 0) return;
    try {
        SharedState shared = shared_state();
        if (!shared.valid()) return;
        std::string whose =
            "httpd child pid " + std::to_string(static_cast<long>(pid)) + " exited";
        log_release(s, shared.release_child(static_cast<int32_t>(pid)), whose.c_str());
    } catch (...) {
    }
}

}  // namespace

int child_row() { return g_child_row; }

void release_rows_of_gone_children(const SharedState& state, const std::set<pid_t>& children,
                                   server_rec* s) {
    log_release(s, state.release_gone_children([&children](int32_t pid) {
        return children.count(static_cast<pid_t>(pid)) != 0;
    }), "httpd children found gone at this restart had exited");
}

void register_child_count_hooks(apr_pool_t*) {
    // After close_trusted_descriptor (REALLY_FIRST); before any request.
    ap_hook_child_init(claim_row, nullptr, nullptr, APR_HOOK_FIRST);
    ap_hook_child_status(release_exited_child, nullptr, nullptr, APR_HOOK_MIDDLE);
}

}  // namespace fpmr::glue
