#include "release_inventory.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "release_links.h"

namespace fpmr::cli {

bool natural_less(const std::string& a, const std::string& b) {
    size_t i = 0, j = 0;
    while (i < a.size() && j < b.size()) {
        if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
            size_t ei = i, ej = j;
            while (ei < a.size() && std::isdigit(static_cast<unsigned char>(a[ei]))) ++ei;
            while (ej < b.size() && std::isdigit(static_cast<unsigned char>(b[ej]))) ++ej;
            // Leading zeros do not make a number larger.
            size_t zi = i, zj = j;
            while (zi + 1 < ei && a[zi] == '0') ++zi;
            while (zj + 1 < ej && b[zj] == '0') ++zj;
            std::string na = a.substr(zi, ei - zi), nb = b.substr(zj, ej - zj);
            if (na.size() != nb.size()) return na.size() < nb.size();
            if (na != nb) return na < nb;
            i = ei;
            j = ej;
            continue;
        }
        if (a[i] != b[j]) return a[i] < b[j];
        ++i;
        ++j;
    }
    if ((a.size() - i) != (b.size() - j)) return a.size() - i < b.size() - j;
    return a < b;  // equal by the rule ("r01", "r1"): any fixed order
}

std::vector<ReleaseDirectory> releases_beside(const std::string& current_release) {
    std::vector<ReleaseDirectory> out;
    std::string parent = current_release.substr(0, current_release.find_last_of('/'));
    if (parent.empty()) return out;  // a release directly under /: no siblings to speak of
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(parent.c_str()), ::closedir);
    if (!dir) return out;
    while (dirent* entry = ::readdir(dir.get())) {
        std::string name = entry->d_name;
        if (name == "." || name == "..") continue;
        std::string path = parent + "/" + name;
        struct stat st;
        if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;  // symlinks too
        out.push_back({name, path});
    }
    std::sort(out.begin(), out.end(),
              [](const ReleaseDirectory& x, const ReleaseDirectory& y) { return natural_less(y.name, x.name); });
    return out;
}

namespace {
std::optional<std::string> string_field(const Document& doc, const char* key) {
    if (!doc.contains(key) || !doc[key].is_string()) return std::nullopt;
    return doc[key].get<std::string>();
}
}  // namespace

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

std::vector<std::string> reasons_in_use(const ReleaseUses& uses, const std::string& release) {
    std::vector<std::string> why;
    if (uses.current == release) why.push_back("the release symlink names it");
    if (uses.previous_link == release) why.push_back("<symlink>.previous names it");
    if (uses.previous == release) why.push_back("it is the release before the last flip (rollback target)");
    if (uses.prepared == release) why.push_back("a deploy is preparing it");
    auto masters = uses.masters.find(release);
    if (masters != uses.masters.end() && !masters->second.empty()) {
        std::string names;
        for (const std::string& n : masters->second) names += (names.empty() ? "" : ",") + n;
        why.push_back("masters of " + names + " serve it");
    }
    auto flying = uses.in_flight.find(release);
    if (flying != uses.in_flight.end() && flying->second > 0) {
        why.push_back(std::to_string(flying->second) + " request" + (flying->second == 1 ? "" : "s") +
                      " in flight");
    }
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
        std::string joined;
        for (const std::string& w : why) joined += (joined.empty() ? "" : "; ") + w;
        plan.refused.emplace_back(r, joined);
    }
    return plan;
}

}  // namespace fpmr::cli
