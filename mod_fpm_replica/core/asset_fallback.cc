#include "asset_fallback.h"

#include <sys/stat.h>

#include <climits>
#include <cstdlib>

#include "release_order.h"

namespace fpmr {

namespace {

bool has_dot_component(const std::string& relative) {
    size_t at = 0;
    while (at < relative.size()) {
        size_t end = relative.find('/', at);
        if (end == std::string::npos) end = relative.size();
        std::string part = relative.substr(at, end - at);
        if (part == "." || part == "..") return true;
        at = end + 1;
    }
    return false;
}

std::string real_path(const std::string& path) {
    char resolved[PATH_MAX];
    return ::realpath(path.c_str(), resolved) ? std::string(resolved) : std::string();
}

}  // namespace

std::vector<AssetCandidate> asset_candidates(const std::string& pinned_release,
                                             const std::string& missing_path, size_t max_releases) {
    std::vector<AssetCandidate> out;
    if (pinned_release.empty() || pinned_release.back() == '/' ||
        missing_path.compare(0, pinned_release.size() + 1, pinned_release + "/") != 0) {
        return out;
    }
    const std::string relative = missing_path.substr(pinned_release.size());  // "/public/app.js"
    if (relative.size() < 2 || has_dot_component(relative.substr(1))) return out;
    const std::string pinned_name = pinned_release.substr(pinned_release.find_last_of('/') + 1);
    size_t looked_at = 0;
    for (const ReleaseDirectory& release : releases_beside(pinned_release)) {
        if (release.name == pinned_name) continue;
        if (looked_at++ >= max_releases) break;
        const std::string root = real_path(release.path);
        const std::string found = real_path(release.path + relative);
        struct stat st;
        if (root.empty() || found.empty() || found.compare(0, root.size() + 1, root + "/") != 0 ||
            ::stat(found.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
            continue;
        }
        out.push_back({release.name, found});
    }
    return out;
}

}  // namespace fpmr
