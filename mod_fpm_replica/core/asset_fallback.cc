#include "asset_fallback.h"

#include <sys/stat.h>

#include "release_order.h"
#include "release_resolver.h"

namespace fpmr {

std::vector<AssetCandidate> asset_candidates(const std::string& pinned_release,
                                             const std::string& missing_path, size_t max_releases) {
    std::vector<AssetCandidate> out;
    if (!is_normalized_absolute_path(pinned_release) || !is_normalized_absolute_path(missing_path) ||
        missing_path == pinned_release || !path_is_under(missing_path, pinned_release)) {
        return out;
    }
    const std::string relative = missing_path.substr(pinned_release.size());  // "/public/app.js"
    const std::string pinned_name = pinned_release.substr(pinned_release.find_last_of('/') + 1);
    size_t looked_at = 0;
    for (const ReleaseDirectory& release : releases_beside(pinned_release)) {
        if (release.name == pinned_name) continue;
        if (looked_at++ >= max_releases) break;
        const std::string root = real_path(release.path);
        const std::string found = real_path(release.path + relative);
        struct stat st;
        if (root.empty() || found.empty() || found == root || !path_is_under(found, root) ||
            ::stat(found.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
            continue;
        }
        out.push_back({release.name, found});
    }
    return out;
}

}  // namespace fpmr
