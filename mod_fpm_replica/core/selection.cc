// Replica choice: least in flight, ties rotate.
#include "selection.h"

namespace fpmr {

const char* unusable_reason(Unusable why, ReplicaState state) {
    switch (why) {
        case Unusable::No: return "usable";
        case Unusable::NotReady: return state_name(state);
        case Unusable::Refused: return "refused a connection";
        case Unusable::AlreadyTried: return "already failed for this request";
    }
    return "unknown";
}

Unusable check_usable(const Candidate& c, int64_t now_us) {
    if (c.tried) return Unusable::AlreadyTried;
    if (c.state != ReplicaState::Ready) return Unusable::NotReady;
    if (c.retry_at_us != 0 && now_us < c.retry_at_us) return Unusable::Refused;
    return Unusable::No;
}

int choose_replica(const std::vector<Candidate>& candidates, int64_t now_us) {
    int best = -1;
    for (size_t i = 0; i < candidates.size(); ++i) {
        if (check_usable(candidates[i], now_us) != Unusable::No) continue;
        if (best < 0 || prefer(candidates[i], candidates[best])) best = static_cast<int>(i);
    }
    return best;
}

ReplicaState reported_state(ReplicaState stored, int64_t retry_at_us) {
    if (stored == ReplicaState::Ready && retry_at_us != 0) return ReplicaState::Failed;
    return stored;
}

}  // namespace fpmr
