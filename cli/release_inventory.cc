#include "release_inventory.h"

#include <algorithm>

#include "release_links.h"

namespace fpmr::cli {

namespace {
std::optional<std::string> string_field(const Document& doc, const char* key) {
    if (!doc.contains(key) || !doc[key].is_string()) return std::nullopt;
    return doc[key].get<std::string>();
}
}  // namespace

std::string joined(const std::vector<std::string>& words, const char* separator) {
    std::string out;
    for (const std::string& w : words) out += (out.empty() ? "" : separator) + w;
    return out;
}

ReleaseUses uses_of(const Document& doc, const std::string& link) {
    ReleaseUses uses;
    uses.current = release_directory(link).value_or("");
    if (is_symlink(link + ".previous")) uses.previous_link = release_directory(link + ".previous");
    uses.previous = string_field(doc, "previous_release");
    if (doc.contains("prepared") && doc["prepared"].is_object()) {
        std::string state = doc["prepared"].value("state", "");
        if (state == "starting" || state == "ready") uses.prepared = string_field(doc["prepared"], "release");
    }
    if (doc.contains("releases") && doc["releases"].is_array()) {
        for (const Document& r : doc["releases"]) {
            std::optional<std::string> path = string_field(r, "release");
            if (!path) continue;
            int64_t n = r.value("in_flight", int64_t{0});
            if (n > 0) uses.in_flight[*path] += n;
            if (r.contains("replicas") && r["replicas"].is_array()) {
                for (const Document& name : r["replicas"]) {
                    if (name.is_string()) uses.masters[*path].push_back(name.get<std::string>());
                }
            }
        }
    }
    return uses;
}

namespace {
// What reads or may read the release's files: a deploy's preparation, a
// master, a request.
void append_live_uses(const ReleaseUses& uses, const std::string& release, std::vector<std::string>& why) {
    if (uses.prepared == release) why.push_back("a deploy is preparing it");
    auto masters = uses.masters.find(release);
    if (masters != uses.masters.end() && !masters->second.empty()) {
        why.push_back("masters of " + joined(masters->second, ",") + " serve it");
    }
    auto flying = uses.in_flight.find(release);
    if (flying != uses.in_flight.end() && flying->second > 0) {
        why.push_back(std::to_string(flying->second) + " request" + (flying->second == 1 ? "" : "s") +
                      " in flight");
    }
}
constexpr const char* kLinkNamesIt = "the release symlink names it";
}  // namespace

std::vector<std::string> reasons_in_use(const ReleaseUses& uses, const std::string& release) {
    std::vector<std::string> why;
    if (uses.current == release) why.push_back(kLinkNamesIt);
    if (uses.previous_link == release) why.push_back("<symlink>.previous names it");
    if (uses.previous == release) why.push_back("it is the release before the last flip (rollback target)");
    append_live_uses(uses, release, why);
    return why;
}

std::vector<std::string> reasons_not_removable(const ReleaseUses& uses, const std::string& release) {
    std::vector<std::string> why;
    if (uses.current == release) why.push_back(kLinkNamesIt);
    append_live_uses(uses, release, why);
    return why;
}

PrunePlan plan_prune(const std::vector<ReleaseDirectory>& newest_first, size_t keep,
                     const ReleaseUses& uses) {
    PrunePlan plan;
    for (size_t i = 0; i < newest_first.size(); ++i) {
        const ReleaseDirectory& r = newest_first[i];
        if (i < keep) {
            plan.kept.push_back(r);
            continue;
        }
        std::vector<std::string> why = reasons_in_use(uses, r.path);
        if (why.empty()) {
            plan.removable.push_back(r);
            continue;
        }
        plan.refused.emplace_back(r, joined(why, "; "));
    }
    return plan;
}

}  // namespace fpmr::cli
