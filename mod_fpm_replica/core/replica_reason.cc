// The status document's `reason`, in words.
#include "replica_reason.h"

#include <sys/wait.h>

namespace fpmr {

std::string describe_wait_status(int wait_status) {
    if (WIFEXITED(wait_status)) return "exited with status " + std::to_string(WEXITSTATUS(wait_status));
    if (WIFSIGNALED(wait_status)) return "was killed by signal " + std::to_string(WTERMSIG(wait_status));
    return "ended (wait status " + std::to_string(wait_status) + ")";
}

namespace {

std::string health_reason(const ReasonInputs& in) {
    if (in.trouble == MasterTrouble::HealthChecks && in.trouble_detail > 0) {
        return "failing its health checks: answered " + std::to_string(in.trouble_detail);
    }
    return "failing its health checks: no answer within the timeout";
}

}  // namespace

std::string state_reason(const ReasonInputs& in) {
    switch (in.lifecycle) {
        case ReplicaState::Starting:
            if (in.trouble == MasterTrouble::Crashed) {
                return "restarting: its master " + describe_wait_status(in.trouble_detail);
            }
            if (in.trouble == MasterTrouble::HealthChecks) return "restarting: " + health_reason(in);
            return "starting: waiting for its master to answer";
        case ReplicaState::Draining:
            if (in.admin_drained) return "drained by the operator";
            return "stopping: finishing its requests (replaced, removed or httpd stopping)";
        case ReplicaState::Stopped:
            if (in.trouble == MasterTrouble::ReplacementFailed) {
                return "its new master " + describe_wait_status(in.trouble_detail) + " before it answered";
            }
            if (in.trouble == MasterTrouble::StartTimeout) return "its new master did not answer in time";
            return "stopped";
        case ReplicaState::Failed:
            if (in.trouble == MasterTrouble::CrashLoop) {
                return "crashed repeatedly within a minute (last: " + describe_wait_status(in.trouble_detail) +
                       "): not restarted until the next restart";
            }
            return "failed";
        case ReplicaState::Ready:
            break;
    }
    if (in.health == HealthState::Failing) return health_reason(in);
    if (in.retry_at_us != 0) return "refused a connection: tried again after a moment";
    if (in.admin_drained) return "drained by the operator";
    return "";
}

}  // namespace fpmr
