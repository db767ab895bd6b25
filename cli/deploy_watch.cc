#include "deploy_watch.h"

#include <cstdio>

namespace fpmr::cli {

AnswerCounts answers_of(const Document& doc, const std::string& release) {
    AnswerCounts counts;
    if (!doc.contains("releases") || !doc["releases"].is_array()) return counts;
    for (const Document& r : doc["releases"]) {
        if (!r.contains("release") || r["release"] != release) continue;
        counts.requests += r.value("requests", uint64_t{0});
        counts.server_errors += r.value("server_errors", uint64_t{0});
    }
    return counts;
}

std::optional<std::string> judge_watch(const AnswerCounts& since_flip, const WatchRule& rule,
                                       bool unhealthy) {
    if (unhealthy) return std::string("every replica serving it fails its health checks");
    if (since_flip.requests < rule.min_requests || since_flip.requests == 0) return std::nullopt;
    double rate = static_cast<double>(since_flip.server_errors) / static_cast<double>(since_flip.requests);
    if (rate <= rule.max_error_rate) return std::nullopt;
    char text[160];
    std::snprintf(text, sizeof text, "%llu of its %llu PHP answers were 5xx (%.1f%%, above %.1f%%)",
                  static_cast<unsigned long long>(since_flip.server_errors),
                  static_cast<unsigned long long>(since_flip.requests), rate * 100, rule.max_error_rate * 100);
    return std::string(text);
}

bool serving_replicas_unhealthy(const Document& doc, const std::string& release) {
    if (!doc.contains("replicas") || !doc["replicas"].is_array()) return false;
    bool by_release = doc.value("mode", "") == "namespace";
    int serving = 0, failing = 0;
    for (const Document& r : doc["replicas"]) {
        if (by_release && !(r.contains("release") && r["release"] == release)) continue;
        ++serving;
        if (r.value("health", "") == "failing" || r.value("state", "") == "failed") ++failing;
    }
    return serving > 0 && failing == serving;
}

}  // namespace fpmr::cli
