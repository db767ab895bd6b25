// Namespace mode with supervision: a request pinned to a release no replica
// serves yet polls the shared slots until the supervisor has one ready, or
// answers 503.
#include "glue.h"
#include "selection.h"

namespace fpmr::glue {

namespace {

// Whether a member's master serves `hash` and is ready (selection.h).
bool release_served(const VhostReplicas& set, SharedState shared, uint64_t hash) {
    for (const ReplicaMember& m : set.members) {
        if (m.slot >= 0 && serves_release(candidate_of(shared, m.slot, false), hash)) return true;
    }
    return false;
}

}  // namespace

// Namespace mode: a request pinned to a release no replica serves yet (the
// symlink was just flipped) waits, outside any lock, until the supervisor has
// a replica of that release ready; 503 with a log line after kReleaseWaitUs.
int wait_for_release(request_rec* r, RequestState* st) {
    SharedState shared = shared_state();
    if (!shared.valid() || release_served(*st->set, shared, st->release_hash)) return OK;
    // Only a request that has to wait pays for the deadline and the slot lookup.
    int64_t deadline = now_us() + kReleaseWaitUs;
    ReleaseConfig* release = release_for(st->set->defined_in);
    int release_slot = release ? shared.find_release(release->symlink) : -1;
    while (!release_served(*st->set, shared, st->release_hash)) {
        bool known_broken = release_slot >= 0 &&
            shared.trusted_release(release_slot).failed_release_hash.load() == st->release_hash;
        if (known_broken || now_us() >= deadline) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FPMRNO(00042)
                          "no replica of %s serves release %s%s: answering 503",
                          st->set->vhost_label.c_str(), st->release_dir,
                          known_broken ? " (its replicas could not be started)"
                                       : " within the wait limit");
            return HTTP_SERVICE_UNAVAILABLE;
        }
        apr_sleep(apr_time_from_msec(20));
    }
    return OK;
}

}  // namespace fpmr::glue
