// Which replica gets the next request: the usable one with the fewest
// requests in flight; ties go to the one picked least recently, so
// sequential requests alternate and every replica's opcache stays warm.
#pragma once

#include <cstdint>
#include <vector>

#include "shared_state.h"

namespace fpmr {

// Why a replica cannot take a request right now.
enum class Unusable {
    No = 0,          // usable
    NotReady,        // starting, draining, stopped or failed (see its state)
    Refused,         // refused a connection recently; retried after retry_at
    AlreadyTried,    // this request already failed on it
};
const char* unusable_reason(Unusable why, ReplicaState state);

// One replica as the chooser sees it, copied out of its shared slot.
struct Candidate {
    ReplicaState state = ReplicaState::Ready;
    int64_t in_flight = 0;
    uint64_t last_pick = 0;
    int64_t retry_at_us = 0;  // 0 = no recent refusal
    bool tried = false;       // by the current request
};

Unusable check_usable(const Candidate& c, int64_t now_us);

// True when `a` is a better choice than `b` (both usable).
inline bool prefer(const Candidate& a, const Candidate& b) {
    if (a.in_flight != b.in_flight) return a.in_flight < b.in_flight;
    return a.last_pick < b.last_pick;
}

// Index of the best usable candidate, or -1 when none is usable.
int choose_replica(const std::vector<Candidate>& candidates, int64_t now_us);

// The state the status document shows: a replica that refused its last
// connection attempt reads "failed" until a request succeeds on it again.
ReplicaState reported_state(ReplicaState stored, int64_t retry_at_us);

// How long a replica that refused a connection is left alone before one
// request tries it again (mod_proxy's own worker retry is set to match, and
// takes whole seconds).
constexpr int64_t kRefusedRetryUs = 1000000;

}  // namespace fpmr
