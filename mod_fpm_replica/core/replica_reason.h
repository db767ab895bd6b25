// Why a replica member is not ready, in words, for the status document's
// `reason`: derived from the same parts its `state` is (the supervisor's
// lifecycle and what it last saw go wrong, the health checks, the operator's
// drain, a connection refused recently), so the two never disagree.
#pragma once

#include <cstdint>
#include <string>

#include "shared_state.h"

namespace fpmr {

struct ReasonInputs {
    ReplicaState lifecycle = ReplicaState::Starting;
    HealthState health = HealthState::Unknown;
    bool admin_drained = false;
    int64_t retry_at_us = 0;  // refused a connection: not tried again before then
    MasterTrouble trouble = MasterTrouble::None;
    int32_t trouble_detail = 0;
};

// "" when the member is ready and usable; else a sentence fragment, e.g.
// "failing its health checks: /ping answered 500".
std::string state_reason(const ReasonInputs& in);

// "exited with status 78", "was killed by signal 9".
std::string describe_wait_status(int wait_status);

}  // namespace fpmr
