// The status document's `reason`: one sentence per way a replica is not ready.
#include <catch2/catch.hpp>

#include <csignal>

#include "replica_reason.h"

using namespace fpmr;

TEST_CASE("a ready, usable replica has no reason; every other state says why", "[reason]") {
    ReasonInputs ready;
    ready.lifecycle = ReplicaState::Ready;
    ready.health = HealthState::Passing;
    CHECK(state_reason(ready) == "");

    ReasonInputs in = ready;
    in.admin_drained = true;
    CHECK(state_reason(in) == "drained by the operator");

    in = ready;
    in.health = HealthState::Failing;
    in.trouble = MasterTrouble::HealthChecks;
    in.trouble_detail = 500;
    CHECK(state_reason(in) == "failing its health checks: answered 500");
    in.trouble_detail = 0;
    CHECK(state_reason(in) == "failing its health checks: no answer within the timeout");

    in = ready;
    in.retry_at_us = 123;
    CHECK(state_reason(in) == "refused a connection: tried again after a moment");

    in = ReasonInputs{};
    CHECK(state_reason(in) == "starting: waiting for its master to answer");
    in.trouble = MasterTrouble::Crashed;
    in.trouble_detail = 1 << 8;
    CHECK(state_reason(in) == "restarting: its master exited with status 1");

    in.lifecycle = ReplicaState::Failed;
    in.trouble = MasterTrouble::CrashLoop;
    in.trouble_detail = SIGSEGV;
    CHECK(state_reason(in) ==
          "crashed repeatedly within a minute (last: was killed by signal 11): not restarted until the next restart");

    in.lifecycle = ReplicaState::Stopped;
    in.trouble = MasterTrouble::ReplacementFailed;
    in.trouble_detail = 78 << 8;
    CHECK(state_reason(in) == "its new master exited with status 78 before it answered");
    in.trouble = MasterTrouble::StartTimeout;
    CHECK(state_reason(in) == "its new master did not answer in time");
}
