// The bytes the replica supervisor reads from its pipe: length-prefixed
// frames, each an encoded plan. The input is fed to PlanFrames as it would
// arrive, in pieces, and also decoded whole.
#include <cstring>
#include <string>

#include "fuzz_input.h"
#include "supervisor_plan.h"

using namespace fpmr;
using fpmr::fuzz::violated;

namespace {

void check_plan(const SupervisorPlan& plan) {
    // Encoding is canonical: what decodes, encodes to bytes that decode to
    // the same plan (compared through its encoding).
    std::string encoded = encode_plan(plan);
    auto again = decode_plan(encoded);
    if (!again || encode_plan(*again) != encoded) violated("a decoded plan does not re-encode");

    PlanChanges changes = compare_plans(plan.replicas, plan.replicas);
    std::vector<int> seen(plan.replicas.size(), 0);
    for (auto [running, wanted] : changes.kept) {
        if (running >= seen.size() || wanted >= seen.size()) violated("kept index out of range");
        ++seen[running];
    }
    for (auto [running, wanted] : changes.switched) {
        if (running >= seen.size() || wanted >= seen.size()) violated("switched index out of range");
        ++seen[running];
    }
    for (size_t running : changes.removed) {
        if (running >= seen.size()) violated("removed index out of range");
        ++seen[running];
    }
    for (size_t wanted : changes.added) {
        if (wanted >= seen.size()) violated("added index out of range");
    }
    for (int count : seen) {
        if (count != 1) violated("a running replica is not exactly once kept, switched or removed");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view bytes = fpmr::fuzz::as_text(data, size);
    if (auto plan = decode_plan(bytes)) check_plan(*plan);

    // As a stream from the pipe, in reads of 1, 2, 3... bytes.
    PlanFrames frames;
    size_t consumed = 0;
    for (size_t piece = 1; consumed < bytes.size(); ++piece) {
        size_t n = std::min(piece, bytes.size() - consumed);
        frames.append(bytes.data() + consumed, n);
        consumed += n;
        std::optional<SupervisorPlan> plan;
        while (frames.next(&plan)) {
            if (plan) check_plan(*plan);
        }
    }
    return 0;
}
