// Opening the helper's directories by descriptor, following no symlink.
#include "held_paths.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <deque>
#include <vector>

#include "helper_rules.h"

namespace fpmr::helper {

HeldFd& HeldFd::operator=(HeldFd&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = other.release();
    }
    return *this;
}

HeldFd::~HeldFd() {
    if (fd_ >= 0) ::close(fd_);
}

namespace {

// O_NOFOLLOW with O_PATH opens a symlink itself instead of failing; with
// O_DIRECTORY added that open fails (ENOTDIR), so no link is ever held.
constexpr int kComponentFlags = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

std::vector<std::string> components_of(const std::string& path) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= path.size()) {
        size_t slash = path.find('/', start);
        if (slash == std::string::npos) slash = path.size();
        if (slash > start) out.push_back(path.substr(start, slash - start));
        start = slash + 1;
    }
    return out;
}

std::string joined(const std::string& dir, const std::string& name) {
    return dir == "/" ? "/" + name : dir + "/" + name;
}

std::string parent_of(const std::string& absolute) {
    size_t slash = absolute.find_last_of('/');
    return slash == 0 || slash == std::string::npos ? "/" : absolute.substr(0, slash);
}

HeldFd open_root() { return HeldFd(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)); }

long openat2_directory(int dirfd, const char* path) {
    struct open_how how {};
    how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
    // No O_NOFOLLOW: with it openat2 would hand back a trailing symlink
    // itself; without it RESOLVE_NO_SYMLINKS refuses it (ELOOP) like any other.
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    return ::syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

// One component of a walk, a name without "/" in it, beneath `dirfd`;
// errno ELOOP (not ENOTDIR) when the name is a symlink, as openat2 says it.
HeldFd open_component(int dirfd, const std::string& name) {
    if (name == "." || name == "..") {  // would step outside dirfd or hide a name
        errno = EXDEV;
        return HeldFd();
    }
    HeldFd next(::openat(dirfd, name.c_str(), kComponentFlags));
    if (!next.valid()) {
        int saved = errno;
        struct stat st;
        if (saved == ENOTDIR && ::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISLNK(st.st_mode)) {
            saved = ELOOP;
        }
        errno = saved;
    }
    return next;
}

HeldFd open_by_walk(int dirfd, const std::string& relative) {
    HeldFd current(::openat(dirfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!current.valid()) return current;
    for (const auto& name : components_of(relative)) {
        HeldFd next = open_component(current.get(), name);
        if (!next.valid()) return next;
        current = std::move(next);
    }
    return current;
}

std::string user_name(uid_t uid) {
    const struct passwd* pw = ::getpwuid(uid);
    return pw ? pw->pw_name : "uid " + std::to_string(uid);
}

std::string group_name(gid_t gid) {
    const struct group* gr = ::getgrgid(gid);
    return gr ? gr->gr_name : "gid " + std::to_string(gid);
}

}  // namespace

Resolution default_resolution() {
#ifdef FPMR_HELPER_FORCE_FALLBACK
    return Resolution::kWalk;
#else
    // Kernels before 5.6 answer ENOSYS; some container seccomp profiles
    // answer EPERM for system calls they do not know. "/" cannot fail else.
    long fd = openat2_directory(AT_FDCWD, "/");
    if (fd < 0) return Resolution::kWalk;
    ::close(static_cast<int>(fd));
    return Resolution::kOpenat2;
#endif
}

HeldFd open_directory_beneath(int dirfd, const std::string& relative, Resolution how) {
    if (how == Resolution::kWalk) return open_by_walk(dirfd, relative);
    std::string path = relative;
    while (!path.empty() && path[0] == '/') path.erase(0, 1);
    long fd = openat2_directory(dirfd, path.empty() ? "." : path.c_str());
    return HeldFd(fd < 0 ? -1 : static_cast<int>(fd));
}

HeldFd open_directory_absolute(const std::string& absolute, Resolution how) {
    HeldFd root = open_root();
    if (!root.valid()) return root;
    return open_directory_beneath(root.get(), absolute, how);
}

HeldFd open_directory_visiting_ancestors(const std::string& absolute,
                                         const std::function<void(const Ancestor&)>& visit) {
    HeldFd current = open_root();
    if (!current.valid()) return current;
    std::string path = "/";
    for (const auto& name : components_of(absolute)) {
        // Checked through the descriptor about to be searched, never by
        // path: the directory the next name is looked up in is the one
        // that passed. (Walking ".." up from the end instead checks wherever
        // the end hangs at that moment, which its parent's owner can move.)
        Ancestor ancestor{path, {}};
        if (::fstat(current.get(), &ancestor.st) != 0) return HeldFd();
        visit(ancestor);
        HeldFd next = open_component(current.get(), name);
        if (!next.valid()) return next;
        current = std::move(next);
        path = joined(path, name);
    }
    return current;
}

std::string untrusted_reason_of(const struct stat& st) {
    return untrusted_directory_reason(st.st_uid, st.st_gid, st.st_mode, user_name(st.st_uid),
                                      group_name(st.st_gid));
}

std::string resolve_configured_root(const std::string& configured) {
    constexpr int kMaxSymlinks = 40;  // as the kernel's own limit
    std::deque<std::string> todo;
    for (auto& name : components_of(configured)) todo.push_back(name);
    HeldFd current = open_root();
    std::string resolved = "/";
    int followed = 0;
    while (current.valid() && !todo.empty()) {
        std::string name = todo.front();
        todo.pop_front();
        if (name == ".") continue;
        if (name == "..") {
            // Only from a symlink's target (the configuration has no "..").
            // The prefix resolved so far has no symlink in it, so its
            // lexical parent is its real parent.
            current = HeldFd(::openat(current.get(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
            resolved = parent_of(resolved);
            continue;
        }
        std::string here = joined(resolved, name);
        struct stat st;
        if (::fstatat(current.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return "";
        if (S_ISLNK(st.st_mode)) {
            struct stat dir_st;
            if (::fstat(current.get(), &dir_st) != 0) return "";
            std::string why;
            if (st.st_uid != 0) {
                why = "is owned by " + user_name(st.st_uid) + " (uid " + std::to_string(st.st_uid) + ")";
            } else {
                std::string dir_why = untrusted_reason_of(dir_st);
                if (!dir_why.empty()) why = "lies in '" + resolved + "', which " + dir_why;
            }
            if (!why.empty()) {
                throw Refusal{"release-root '" + configured + "': the symlink '" + here + "' " + why +
                              ", so its owner could move the root; write the real path"};
            }
            if (++followed > kMaxSymlinks) {
                throw Refusal{"release-root '" + configured + "' has more than 40 symlinks"};
            }
            char target[PATH_MAX];
            ssize_t n = ::readlinkat(current.get(), name.c_str(), target, sizeof target - 1);
            if (n <= 0) return "";
            std::string link(target, static_cast<size_t>(n));
            auto parts = components_of(link);
            todo.insert(todo.begin(), parts.begin(), parts.end());
            if (link[0] == '/') {
                current = open_root();
                resolved = "/";
            }
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            errno = ENOTDIR;
            return "";
        }
        current = HeldFd(::openat(current.get(), name.c_str(), kComponentFlags));
        resolved = here;
    }
    return current.valid() ? resolved : "";
}

}  // namespace fpmr::helper
