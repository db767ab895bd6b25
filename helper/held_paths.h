// Directories the helper acts on, opened and held by descriptor without
// following any symlink, so that the directory it checks is the directory it
// mounts: a name that someone else can rename is looked up once, never again
// by path. No privileged operation here (opening with O_PATH needs none), so
// the unit tests run it on directories of their own.
#pragma once

#include <sys/stat.h>

#include <functional>
#include <string>

namespace fpmr::helper {

// An owned descriptor, closed when it goes.
class HeldFd {
public:
    HeldFd() = default;
    explicit HeldFd(int fd) : fd_(fd) {}
    HeldFd(HeldFd&& other) noexcept : fd_(other.release()) {}
    HeldFd& operator=(HeldFd&& other) noexcept;
    HeldFd(const HeldFd&) = delete;
    HeldFd& operator=(const HeldFd&) = delete;
    ~HeldFd();
    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    int release() {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }

private:
    int fd_ = -1;
};

// How a path is resolved. kOpenat2 is openat2(2) with RESOLVE_NO_SYMLINKS
// (one atomic lookup); kWalk opens one component at a time with
// O_PATH|O_NOFOLLOW|O_DIRECTORY, for kernels before 5.6 (openat2 answers
// ENOSYS) and for the test build that forces it.
enum class Resolution { kOpenat2, kWalk };

// The resolution this process uses: openat2 unless the kernel lacks it or the
// binary was built with FPMR_HELPER_FORCE_FALLBACK.
Resolution default_resolution();

// Opens `relative` (components separated by '/', none of them "." or "..",
// which check_path_syntax refused already) beneath `dirfd` as an O_PATH
// directory descriptor, following no symlink in any component and never
// leaving `dirfd` (RESOLVE_BENEATH). An empty `relative` reopens `dirfd`.
// Returns an invalid HeldFd with errno set: ELOOP when a component is a
// symlink, ENOTDIR when one is not a directory, ENOENT, EXDEV on escape.
HeldFd open_directory_beneath(int dirfd, const std::string& relative, Resolution how);

// The same from "/" for an absolute path.
HeldFd open_directory_absolute(const std::string& absolute, Resolution how);

// One directory on the way to a directory being opened: the path it was
// reached by (a prefix of the absolute path, which has no symlink in it) and
// the stat of the descriptor that was opened for it.
struct Ancestor {
    std::string path;
    struct stat st;
};

// Opens `absolute` from "/" one component at a time (O_PATH|O_NOFOLLOW|
// O_DIRECTORY, whatever the Resolution), calling `visit` on "/" and on each
// directory above the last one as soon as it is opened, before anything is
// looked up in it. So every directory visited is the one the next name was
// then really found in: a check in `visit` that refuses directories others
// could change makes the whole chain one only root can change, from the top,
// and nothing below a refused directory is ever opened. `visit` refuses by
// throwing (or exiting). Returns the last directory, or an invalid HeldFd
// with errno set as open_directory_beneath does.
HeldFd open_directory_visiting_ancestors(const std::string& absolute,
                                         const std::function<void(const Ancestor&)>& visit);

// Resolves a release-root as root wrote it in the configuration: a symlink
// on the way is followed only where nobody but root can have placed or
// changed it (the symlink owned by root, in a directory that only root may
// write, or that is sticky), because whoever can write its directory would
// otherwise choose where the root is. Returns the resolved absolute path
// (no symlink left in it), "" with errno ENOENT when it does not exist, and
// throws Refusal naming the symlink, its directory and who could change it.
std::string resolve_configured_root(const std::string& configured);

// untrusted_directory_reason (helper_rules.h) for a stat, with the owner's
// and group's names looked up.
std::string untrusted_reason_of(const struct stat& st);

}  // namespace fpmr::helper
