// What `fpm-replica releases` lists and `fpm-replica prune` may delete: the
// release directories beside the current one, newest first, and what keeps
// each in use (read from the status document and the symlinks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "release_order.h"
#include "status_client.h"

namespace fpmr::cli {

using fpmr::natural_less;
using fpmr::ReleaseDirectory;
using fpmr::releases_beside;

// The words with `separator` between them ("a,b").
std::string joined(const std::vector<std::string>& words, const char* separator);

// Everything that keeps a release in use, by real path.
struct ReleaseUses {
    std::string current;                      // the release symlink names it
    std::optional<std::string> previous_link;  // <symlink>.previous names it
    std::optional<std::string> previous;       // the module's release before the last flip
    std::optional<std::string> prepared;       // a deploy preparation starting or ready on it
    std::map<std::string, int64_t> in_flight;  // pinned requests not finished
    std::map<std::string, std::vector<std::string>> masters;  // replicas whose masters serve it
};
// Read from the status document and the symlink `link` beside it.
ReleaseUses uses_of(const Document& doc, const std::string& link);
// Why `release` is in use ("the symlink names it", "2 requests in flight",
// ...); empty when nothing uses it.
std::vector<std::string> reasons_in_use(const ReleaseUses& uses, const std::string& release);
// Why `release` cannot be deleted now even when asked for by name
// (`remove`): the symlink names it, a deploy prepares it, a master serves
// it or a request runs on it. Unlike reasons_in_use, a rollback record
// (the module's previous release, <symlink>.previous) is none of them:
// deleting the release rolled back from is what a deploy tool asks for.
std::vector<std::string> reasons_not_removable(const ReleaseUses& uses, const std::string& release);

struct PrunePlan {
    std::vector<ReleaseDirectory> kept;     // the `keep` newest
    std::vector<ReleaseDirectory> removable;
    std::vector<std::pair<ReleaseDirectory, std::string>> refused;  // with the reasons, joined
};
PrunePlan plan_prune(const std::vector<ReleaseDirectory>& newest_first, size_t keep,
                     const ReleaseUses& uses);

}  // namespace fpmr::cli
