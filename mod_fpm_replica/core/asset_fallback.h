// Asset continuity (FpmReplicaAssetFallback): where a static file that is
// missing from a request's pinned release may be served from instead, so a
// page rendered from one release still gets its hashed assets after a flip
// to the next (or, across a fleet, from a host that already holds the next
// release but still serves the previous one).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace fpmr {

struct AssetCandidate {
    std::string release_id;  // the release's directory name, for the response header
    std::string path;        // the file in it (real path)
};

// The file `missing_path` (a path under `pinned_release`, both real and
// absolute) in the other releases beside the pinned one: of the
// `max_releases` newest (natural order of names), those where it exists as a
// regular file whose real path lies inside that release, newest first.
// Nothing for a path outside the pinned release or with "." or ".."
// components.
std::vector<AssetCandidate> asset_candidates(const std::string& pinned_release,
                                             const std::string& missing_path, size_t max_releases);

}  // namespace fpmr
