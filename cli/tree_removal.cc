#include "tree_removal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace fpmr::cli {

namespace {

constexpr int kMaxDepth = 512;  // deeper than any release tree; bounds the open descriptors

bool fail(std::string* error, const std::string& what) {
    if (error && error->empty()) *error = what + ": " + std::strerror(errno);
    return false;
}

// Empties the directory open as `dir_fd` (taken: closed here).
bool empty_directory(int dir_fd, dev_t device, const std::string& shown, int depth, std::string* error) {
    DIR* dir = ::fdopendir(dir_fd);
    if (!dir) {
        ::close(dir_fd);
        return fail(error, shown);
    }
    std::vector<std::string> names;
    while (dirent* entry = ::readdir(dir)) {
        std::string n = entry->d_name;
        if (n != "." && n != "..") names.push_back(n);
    }
    bool ok = true;
    int fd = ::dirfd(dir);
    for (const std::string& n : names) {
        struct stat st;
        if (::fstatat(fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT) ok = fail(error, shown + "/" + n);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if (st.st_dev != device) {
                errno = EXDEV;  // a mount point inside the release: not ours to empty
                ok = fail(error, shown + "/" + n);
                continue;
            }
            if (depth >= kMaxDepth) {
                errno = ELOOP;
                ok = fail(error, shown + "/" + n);
                continue;
            }
            int child = ::openat(fd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (child < 0) {
                ok = fail(error, shown + "/" + n);
                continue;
            }
            // The directory opened is the one looked at (not one swapped in
            // between), on the same file system.
            struct stat opened;
            if (::fstat(child, &opened) != 0 || opened.st_dev != st.st_dev || opened.st_ino != st.st_ino) {
                ::close(child);
                errno = EXDEV;
                ok = fail(error, shown + "/" + n);
                continue;
            }
            if (!empty_directory(child, device, shown + "/" + n, depth + 1, error)) ok = false;
            if (::unlinkat(fd, n.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) ok = fail(error, shown + "/" + n);
        } else if (::unlinkat(fd, n.c_str(), 0) != 0 && errno != ENOENT) {
            ok = fail(error, shown + "/" + n);
        }
    }
    ::closedir(dir);
    return ok;
}

}  // namespace

bool remove_tree(const std::string& parent, const std::string& name, std::string* error) {
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
        errno = EINVAL;
        return fail(error, parent + "/" + name);
    }
    // The releases directory itself is not followed through a symlink either.
    int parent_fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (parent_fd < 0) return fail(error, parent);
    int fd = ::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        bool ok = fail(error, parent + "/" + name);
        ::close(parent_fd);
        return ok;
    }
    struct stat st;
    bool ok = ::fstat(fd, &st) == 0;
    if (!ok) {
        fail(error, parent + "/" + name);
        ::close(fd);
    } else {
        ok = empty_directory(fd, st.st_dev, parent + "/" + name, 0, error);
    }
    if (ok && ::unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0) ok = fail(error, parent + "/" + name);
    ::close(parent_fd);
    return ok;
}

}  // namespace fpmr::cli
