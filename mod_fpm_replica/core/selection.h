// Whether a replica member may take a request (usable(), the one rule that
// steering, the probe lane and the status document share) and which member
// gets it: the usable one with the fewest requests in flight, ties going to
// the one picked least recently so that sequential requests alternate and
// every replica's opcache stays warm.
#pragma once

#include <cstdint>
#include <vector>

#include "shared_state.h"

namespace fpmr {

// Whether a replica member can take a request right now, and why not.
enum class Usability {
    Usable = 0,
    // Refused a connection earlier and its hold-off is over: requests try it
    // again, and the status document shows it failed until one succeeds.
    Retrying,
    NotReady,      // starting, draining, stopped or failed (see its state)
    OtherRelease,  // namespace mode: serves another release than the request is pinned to
    Refused,       // refused a connection recently; left alone until retry_at
    AlreadyTried,  // this request already failed on it
};
inline bool takes_requests(Usability u) { return u == Usability::Usable || u == Usability::Retrying; }
// In words, for log lines: "usable", "draining", "refused a connection"...
const char* usability_reason(Usability u, ReplicaState state);

// One member as the chooser sees it, copied out of its shared slots.
struct Candidate {
    ReplicaState state = ReplicaState::Ready;  // SharedState::state_of: lifecycle, health, drain
    int64_t in_flight = 0;
    uint64_t last_pick = 0;
    int64_t retry_at_us = 0;    // 0 = no recent refusal
    uint64_t release_hash = 0;  // the release its master serves (namespace mode); 0: none known
    bool tried = false;         // by the current request
};

// Member `slot` of `shared`, as it is now; `tried` by the current request.
Candidate candidate_of(const SharedState& shared, int slot, bool tried);

// The rule. `pinned_release_hash` is the hash of the release the request is
// pinned to where replicas are routed by release (namespace mode with
// supervision), else 0 (any release). The status document asks with 0 and
// no request (tried false).
Usability usable(const Candidate& c, int64_t now_us, uint64_t pinned_release_hash);

// The state the status document shows for a member: its own where it is not
// ready; "failed" while a refused connection holds it out or is being
// retried; "ready" where it takes requests.
ReplicaState status_state(const Candidate& c, int64_t now_us);

// Whether a master of that release is up (namespace mode: a request pinned to
// it need not wait for the supervisor); it may still refuse, and steering
// then fails over as anywhere else.
inline bool serves_release(const Candidate& c, uint64_t release_hash) {
    return c.state == ReplicaState::Ready && c.release_hash == release_hash;
}

// True when `a` is a better choice than `b` (both usable).
inline bool prefer(const Candidate& a, const Candidate& b) {
    if (a.in_flight != b.in_flight) return a.in_flight < b.in_flight;
    return a.last_pick < b.last_pick;
}

// Index of the best usable candidate, or -1 when none is usable (the finder
// of glue_steering.cc makes the same choice among mod_proxy's workers).
int choose_replica(const std::vector<Candidate>& candidates, int64_t now_us,
                   uint64_t pinned_release_hash = 0);

// How long a replica that refused a connection is left alone before one
// request tries it again (mod_proxy's own worker retry is set to match, and
// takes whole seconds).
constexpr int64_t kRefusedRetryUs = 1000000;

}  // namespace fpmr
