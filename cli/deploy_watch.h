// The judgement of `fpm-replica deploy --watch`: after the flip, is the new
// release answering badly enough to flip back?
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "status_client.h"

namespace fpmr::cli {

// The release's PHP answers as the status document counts them.
struct AnswerCounts {
    uint64_t requests = 0;
    uint64_t server_errors = 0;
};
AnswerCounts answers_of(const Document& doc, const std::string& release);

struct WatchRule {
    double max_error_rate = 0.05;  // --max-error-rate
    // Fewer answers than this say too little to judge a rate by (one 500
    // of the first two requests is not 50% of anything).
    uint64_t min_requests = 10;
};

// Why to roll back, or nullopt to keep watching. `since_flip` are the
// release's answers since just before the flip; `unhealthy` says every
// replica serving it fails its health checks.
std::optional<std::string> judge_watch(const AnswerCounts& since_flip, const WatchRule& rule,
                                       bool unhealthy);

// Namespace mode: every replica whose master serves `release` is failing
// (health checks failing, or failed); realpath mode: every replica is.
// False while none serves it yet.
bool serving_replicas_unhealthy(const Document& doc, const std::string& release);

}  // namespace fpmr::cli
