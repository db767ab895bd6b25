#include "release_order.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "release_resolver.h"

namespace fpmr {

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

std::vector<ReleaseDirectory> releases_beside(const std::string& release_dir) {
    std::vector<ReleaseDirectory> out;
    std::string parent = parent_directory(release_dir);
    if (parent == "/") return out;  // a release directly under /: no siblings to speak of
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

}  // namespace fpmr
