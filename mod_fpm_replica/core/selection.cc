// Replica choice: least in flight, ties rotate; the one usability rule.
#include "selection.h"

namespace fpmr {

const char* usability_reason(Usability u, ReplicaState state) {
    switch (u) {
        case Usability::Usable: return "usable";
        case Usability::Retrying: return "being retried after a refused connection";
        case Usability::NotReady: return state_name(state);
        case Usability::OtherRelease: return "serves another release";
        case Usability::Refused: return "refused a connection";
        case Usability::AlreadyTried: return "already failed for this request";
    }
    return "unknown";
}

Candidate candidate_of(const SharedState& shared, int slot, bool tried) {
    const ReplicaSlot& open = shared.slot(slot);
    Candidate c;
    c.state = shared.state_of(slot);
    c.in_flight = open.in_flight.load(std::memory_order_relaxed);
    c.last_pick = open.last_pick.load(std::memory_order_relaxed);
    c.retry_at_us = open.retry_at_us.load(std::memory_order_relaxed);
    c.release_hash = shared.trusted(slot).release_hash.load(std::memory_order_acquire);
    c.tried = tried;
    return c;
}

Usability usable(const Candidate& c, int64_t now_us, uint64_t pinned_release_hash) {
    if (c.tried) return Usability::AlreadyTried;
    if (c.state != ReplicaState::Ready) return Usability::NotReady;
    if (pinned_release_hash != 0 && c.release_hash != pinned_release_hash) {
        return Usability::OtherRelease;
    }
    if (c.retry_at_us != 0) return now_us < c.retry_at_us ? Usability::Refused : Usability::Retrying;
    return Usability::Usable;
}

ReplicaState status_state(const Candidate& c, int64_t now_us) {
    switch (usable(c, now_us, 0)) {
        case Usability::Usable: return ReplicaState::Ready;
        case Usability::Retrying:
        case Usability::Refused: return ReplicaState::Failed;
        default: return c.state;
    }
}

int choose_replica(const std::vector<Candidate>& candidates, int64_t now_us,
                   uint64_t pinned_release_hash) {
    int best = -1;
    for (size_t i = 0; i < candidates.size(); ++i) {
        if (!takes_requests(usable(candidates[i], now_us, pinned_release_hash))) continue;
        if (best < 0 || prefer(candidates[i], candidates[best])) best = static_cast<int>(i);
    }
    return best;
}

}  // namespace fpmr
