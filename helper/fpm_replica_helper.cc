// fpm-replica-helper: starts one php-fpm master in a private mount namespace
// with its release bind-mounted over a stable path, with every privilege it
// does not need dropped. Small and strict in the manner of bubblewrap: every
// input is checked before anything is touched, every privilege change is a
// named step that is read back, and failure is one line and a fixed exit code
// (2: refused input, 1: a system call failed). Every directory it mounts or
// mounts over is held by descriptor from the moment it is checked (no
// symlink followed anywhere), and the mount is made through descriptors.
// --read-only is accepted for old callers and does nothing: the release is
// always mounted ro,nosuid,nodev unless helper.conf says writable-release yes.
//
//   fpm-replica-helper spawn --release DIR --stable-path DIR [--config FILE]
//                            [--read-only] -- COMMAND [ARGS...]
//   fpm-replica-helper inspect --pid PID --stable-path DIR

#include <fcntl.h>
#include <sched.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "held_paths.h"
#include "helper_rules.h"

extern char** environ;

namespace {

using namespace fpmr::helper;

constexpr int kExitFailed = 1;
constexpr int kExitRefused = 2;

// The test build fpm-replica-helper-fallback takes the paths of a kernel
// without openat2 and open_tree, so they are tested on this one.
#ifdef FPMR_HELPER_FORCE_FALLBACK
constexpr bool kForceFallback = true;
#else
constexpr bool kForceFallback = false;
#endif

// Capabilities php-fpm's master keeps, and why:
//   CAP_SETUID, CAP_SETGID  switch each pool's workers to the pool's user and group
//   CAP_CHOWN               give the listen socket to listen.owner / listen.group
//   CAP_KILL                signal workers that run under another uid
//   CAP_DAC_OVERRIDE        open logs and sockets in directories of the pool users
// Everything else (CAP_SYS_ADMIN first: no more mounts, no namespace escape)
// leaves the effective, permitted, inheritable and bounding sets.
constexpr cap_value_t kKeptCapabilities[] = {CAP_SETUID, CAP_SETGID, CAP_CHOWN, CAP_KILL,
                                             CAP_DAC_OVERRIDE};

[[noreturn]] void die_refused(const std::string& message) {
    std::fprintf(stderr, "fpm-replica-helper: %s\n", message.c_str());
    std::exit(kExitRefused);
}

[[noreturn]] void die_with_error(const char* format, ...) __attribute__((format(printf, 1, 2)));
void die_with_error(const char* format, ...) {
    int saved = errno;
    std::va_list args;
    va_start(args, format);
    std::fprintf(stderr, "fpm-replica-helper: ");
    std::vfprintf(stderr, format, args);
    va_end(args);
    std::fprintf(stderr, ": %s\n", std::strerror(saved));
    std::exit(kExitFailed);
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Loads and checks the configuration: root-owned, not group/other writable,
// opened without following a symlink so the file checked is the file read.
HelperConfig load_config(const SpawnArgs& args) {
    if (args.config_given && getuid() != 0) {
        die_refused("--config is accepted only from root (real uid 0)");
    }
    std::string path = args.config_given ? args.config_path : kDefaultConfigPath;
    int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) die_refused("cannot open configuration '" + path + "': " + std::strerror(errno));
    struct stat st;
    if (::fstat(fd, &st) != 0) die_with_error("fstat %s", path.c_str());
    check_config_file_stat(path, st.st_uid, st.st_mode, S_ISREG(st.st_mode));
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
    ::close(fd);
    if (text.size() > 65536) die_refused("configuration '" + path + "' is too large");
    return parse_config(text, path);
}

// Why a directory could not be opened without following a symlink, in words.
std::string open_failure(int error) {
    switch (error) {
        case ELOOP: return "has a symlink in it (pass the resolved path)";
        case ENOENT: return "does not exist";
        case ENOTDIR: return "is not a directory";
        case EXDEV: return "leaves its release-root";
        default: return std::string("cannot be opened: ") + std::strerror(error);
    }
}

bool same_inode(int a, int b) {
    struct stat sa, sb;
    return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

[[noreturn]] void die_changed(const std::string& path) {
    std::fprintf(stderr, "fpm-replica-helper: %s changed while it was being checked\n", path.c_str());
    std::exit(kExitFailed);
}

// The directories spawn acts on, each held by a descriptor taken while it
// was checked: what is mounted later is what was checked, whatever is
// renamed or swapped in between.
struct HeldPaths {
    HeldFd release;
    std::string release_path;  // its root plus the rest, with no symlink in it
    HeldFd stable;
    std::string stable_path;
};

// The stable path, opened from "/" one component at a time with each
// directory above it checked as it is opened (the stable path itself may
// belong to anyone: it is what gets covered). Whoever may rename or replace
// an ancestor could swap the stable path for anything once the helper has
// looked away, so such a layout is refused outright (exit 2). Checking from
// the top down, through the descriptors the lookup itself uses, means a
// chain that passes is one that only root can change from then on; it
// cannot be a chain the directory was moved into for the moment of a check.
// Invalid (errno set) when a component is missing, not a directory or a
// symlink.
HeldFd open_stable_path(const std::string& stable_path) {
    return open_directory_visiting_ancestors(stable_path, [&](const Ancestor& a) {
        std::string why = untrusted_reason_of(a.st);
        if (!why.empty()) {
            die_refused("--stable-path '" + stable_path + "': its ancestor '" + a.path + "' " + why +
                        ", who could swap the stable path");
        }
    });
}

// Phase 1: every path is checked, and held. The release is opened in two
// steps, its release-root first, then the rest beneath that root's
// descriptor, so the directory found is beneath the root by construction
// and no symlink anywhere on the way is followed.
HeldPaths check_paths(const SpawnArgs& args, const HelperConfig& config, Resolution how) {
    std::vector<std::string> real_roots;
    for (const auto& root : config.release_roots) {
        std::string real = resolve_configured_root(root);
        if (!real.empty()) {
            real_roots.push_back(real);
        } else if (errno != ENOENT) {  // a root that does not exist (yet) allows nothing
            die_refused("release-root '" + root + "' cannot be resolved: " + std::strerror(errno));
        }
    }
    HeldPaths out;
    ReleaseLocation where = locate_release(args.release, real_roots);
    HeldFd root = open_directory_absolute(where.root, how);
    if (!root.valid()) die_refused("release-root '" + where.root + "' " + open_failure(errno));
    out.release = open_directory_beneath(root.get(), where.below_root, how);
    if (!out.release.valid()) die_refused("--release '" + args.release + "' " + open_failure(errno));
    out.release_path = args.release;

    check_stable_path_allowed(args.stable_path, config);
    out.stable = open_stable_path(args.stable_path);
    if (!out.stable.valid()) die_refused("--stable-path '" + args.stable_path + "' " + open_failure(errno));
    for (const auto& real_root : real_roots) {
        if (args.stable_path == real_root || args.stable_path.rfind(real_root + "/", 0) == 0) {
            die_refused("--stable-path '" + args.stable_path + "' lies inside release-root '" + real_root + "'");
        }
    }
    out.stable_path = args.stable_path;
    return out;
}

// The new mount API (open_tree 5.2, mount_setattr 5.12), through syscall(2)
// so the helper builds against any libc.
int clone_tree(int fd) {
    return static_cast<int>(::syscall(SYS_open_tree, fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH));
}

int set_tree_attributes(int tree, uint64_t attributes) {
    struct mount_attr attr {};
    attr.attr_set = attributes;
    return static_cast<int>(::syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr));
}

int move_tree(int tree, int target) {
    return static_cast<int>(::syscall(SYS_move_mount, tree, "", target, "",
                                      MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH));
}

// A detached copy of the release's mount, cut from the held descriptor and
// already read-only (unless writable-release), nosuid and nodev, so it
// never exists in a mount table with weaker flags. Taken before unshare:
// a detached tree may be attached in any namespace the caller then enters.
// Invalid when the kernel lacks the API (the fallback then binds by
// /proc/self/fd).
HeldFd detached_release(const HeldPaths& paths, bool writable) {
    if (kForceFallback) return HeldFd();
    HeldFd tree(clone_tree(paths.release.get()));
    if (!tree.valid()) {
        if (errno == ENOSYS || errno == EPERM) return tree;
        die_with_error("open_tree of %s", paths.release_path.c_str());
    }
    uint64_t attributes = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (writable ? 0 : MOUNT_ATTR_RDONLY);
    if (set_tree_attributes(tree.get(), attributes) != 0) {
        if (errno == ENOSYS) return HeldFd();
        die_with_error("setting ro,nosuid,nodev on the mount of %s", paths.release_path.c_str());
    }
    return tree;
}

// A directory held from before unshare belongs to the old namespace's mount
// and cannot be a mount target (or bind source) here: look it up again,
// without symlinks, and accept it only if it is the very same directory.
HeldFd reopen_same(const HeldFd& held, const std::string& path, Resolution how) {
    HeldFd again = open_directory_absolute(path, how);
    if (!again.valid() || !same_inode(again.get(), held.get())) die_changed(path);
    return again;
}

std::string fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

// For kernels without open_tree: bind and remount through /proc/self/fd
// magic links, which name the held directories, never a path that can be
// swapped. The remount keeps the flags the mount already has (a bind
// remount replaces them all) and adds ours.
void bind_by_proc_fd(const HeldPaths& paths, const HeldFd& stable_here, bool writable, Resolution how) {
    HeldFd release_here = reopen_same(paths.release, paths.release_path, how);
    if (::mount(fd_path(release_here.get()).c_str(), fd_path(stable_here.get()).c_str(), nullptr, MS_BIND,
                nullptr) != 0) {
        die_with_error("bind-mounting %s over %s", paths.release_path.c_str(), paths.stable_path.c_str());
    }
    HeldFd mounted = open_directory_absolute(paths.stable_path, how);
    if (!mounted.valid() || !same_inode(mounted.get(), paths.release.get())) die_changed(paths.stable_path);
    struct statvfs vfs;
    if (::fstatvfs(mounted.get(), &vfs) != 0) die_with_error("statvfs %s", paths.stable_path.c_str());
    unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | (writable ? 0 : MS_RDONLY);
    if (vfs.f_flag & ST_RDONLY) flags |= MS_RDONLY;
    if (vfs.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
    if (vfs.f_flag & ST_NOATIME) flags |= MS_NOATIME;
    if (vfs.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
    if (vfs.f_flag & ST_RELATIME) flags |= MS_RELATIME;
    if (::mount(nullptr, fd_path(mounted.get()).c_str(), nullptr, flags, nullptr) != 0) {
        die_with_error("remounting %s ro,nosuid,nodev", paths.stable_path.c_str());
    }
}

// Phase 2: a private mount namespace, propagation made private before any
// mount so nothing leaks back to the host, then the release attached over
// the stable path through descriptors only, read back by path.
void mount_release(const HeldPaths& paths, bool writable, Resolution how) {
    HeldFd tree = detached_release(paths, writable);
    if (::unshare(CLONE_NEWNS) != 0) die_with_error("unshare(CLONE_NEWNS)");
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
        die_with_error("making / recursively private");
    }
    // The mount target is looked up in this namespace through a chain that
    // is checked again here, and must be the directory held since phase 1:
    // the directory covered is reached the way it was checked, in the
    // namespace where it is covered.
    HeldFd stable_here = open_stable_path(paths.stable_path);
    if (!stable_here.valid() || !same_inode(stable_here.get(), paths.stable.get())) {
        die_changed(paths.stable_path);
    }
    if (tree.valid()) {
        if (move_tree(tree.get(), stable_here.get()) != 0) {
            die_with_error("attaching %s over %s", paths.release_path.c_str(), paths.stable_path.c_str());
        }
    } else {
        bind_by_proc_fd(paths, stable_here, writable, how);
    }
    // Read back, by path inside this namespace and following no symlink: the
    // stable path must now be the release, with the flags asked for.
    HeldFd now = open_directory_absolute(paths.stable_path, how);
    struct statvfs vfs;
    if (!now.valid() || !same_inode(now.get(), paths.release.get()) || ::fstatvfs(now.get(), &vfs) != 0) {
        std::fprintf(stderr, "fpm-replica-helper: %s is not %s after the bind mount\n",
                     paths.stable_path.c_str(), paths.release_path.c_str());
        std::exit(kExitFailed);
    }
    bool flags_ok = (vfs.f_flag & ST_NOSUID) && (vfs.f_flag & ST_NODEV) && (writable || (vfs.f_flag & ST_RDONLY));
    if (!flags_ok) {
        std::fprintf(stderr, "fpm-replica-helper: %s is not mounted %s after the bind mount\n",
                     paths.stable_path.c_str(), writable ? "nosuid,nodev" : "ro,nosuid,nodev");
        std::exit(kExitFailed);
    }
}

// Phase 3: drop every capability not in kKeptCapabilities from the bounding
// set (what root gets back at exec), then from effective, permitted and
// inheritable; clear the ambient set; read the result back.
void drop_capabilities() {
    // Root regains its bounding set at exec, so for root this step is what
    // limits php-fpm. A non-root caller of a file-capability install needs
    // cap_setpcap for it; without it the step is skipped, which is safe for
    // that caller: a non-root exec gets no capability back (inheritable and
    // ambient sets are cleared below and NO_NEW_PRIVS ignores file capabilities).
    const bool is_root = getuid() == 0;
    for (cap_value_t c = 0; c <= CAP_LAST_CAP; ++c) {
        bool kept = false;
        for (cap_value_t k : kKeptCapabilities) kept = kept || k == c;
        if (kept || ::prctl(PR_CAPBSET_DROP, c, 0, 0, 0) == 0 || errno == EINVAL) continue;
        if (errno == EPERM && !is_root) break;
        die_with_error("dropping capability %d from the bounding set", c);
    }
    cap_t caps = cap_get_proc();
    if (!caps) die_with_error("cap_get_proc");
    cap_clear(caps);
    constexpr int kept_count = sizeof kKeptCapabilities / sizeof kKeptCapabilities[0];
    cap_set_flag(caps, CAP_PERMITTED, kept_count, kKeptCapabilities, CAP_SET);
    cap_set_flag(caps, CAP_EFFECTIVE, kept_count, kKeptCapabilities, CAP_SET);
    // A non-root caller running a file-capable helper may not hold them all.
    cap_t current = cap_get_proc();
    for (cap_value_t k : kKeptCapabilities) {
        cap_flag_value_t have = CAP_CLEAR;
        cap_get_flag(current, k, CAP_PERMITTED, &have);
        if (have != CAP_SET) {
            cap_set_flag(caps, CAP_PERMITTED, 1, &k, CAP_CLEAR);
            cap_set_flag(caps, CAP_EFFECTIVE, 1, &k, CAP_CLEAR);
        }
    }
    cap_free(current);
    if (cap_set_proc(caps) != 0) die_with_error("cap_set_proc");
    cap_free(caps);
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
        die_with_error("clearing the ambient capability set");
    }
    cap_t check = cap_get_proc();
    cap_flag_value_t admin = CAP_SET;
    cap_get_flag(check, CAP_SYS_ADMIN, CAP_EFFECTIVE, &admin);
    cap_free(check);
    if (admin == CAP_SET || (is_root && ::prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) != 0)) {
        std::fprintf(stderr, "fpm-replica-helper: CAP_SYS_ADMIN still held after dropping it\n");
        std::exit(kExitFailed);
    }
}

// Phase 4: no new privileges through exec, no inherited descriptors beyond
// stdin/stdout/stderr, an allow-listed environment; then exec.
[[noreturn]] void exec_command(const std::vector<std::string>& command) {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die_with_error("PR_SET_NO_NEW_PRIVS");
    if (::close_range(3, ~0U, 0) != 0) die_with_error("closing inherited descriptors");
    std::vector<std::string> env_in;
    for (char** e = environ; e && *e; ++e) env_in.emplace_back(*e);
    std::vector<std::string> env = allowed_environment(env_in);
    std::vector<char*> envp, argv;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> cmd = command;
    for (auto& a : cmd) argv.push_back(a.data());
    argv.push_back(nullptr);
    environ = envp.data();
    ::execvp(argv[0], argv.data());
    die_with_error("exec %s", command[0].c_str());
}

int spawn(const std::vector<std::string>& args) {
    SpawnArgs parsed = parse_spawn_args(args);
    HelperConfig config = load_config(parsed);
    Resolution how = default_resolution();
    HeldPaths paths = check_paths(parsed, config, how);
    mount_release(paths, config.writable_release, how);
    drop_capabilities();
    exec_command(parsed.command);
}

int inspect(const std::vector<std::string>& args) {
    InspectArgs parsed = parse_inspect_args(args);
    std::string theirs = read_file("/proc/" + std::to_string(parsed.pid) + "/mountinfo");
    if (theirs.empty()) die_refused("no process " + std::to_string(parsed.pid) + " (or its mountinfo is unreadable)");
    std::string release = release_from_mountinfo(theirs, read_file("/proc/self/mountinfo"), parsed.stable_path);
    if (release.empty()) {
        std::fprintf(stderr, "fpm-replica-helper: nothing is mounted at %s in process %d\n",
                     parsed.stable_path.c_str(), parsed.pid);
        return kExitFailed;
    }
    std::printf("%s\n", release.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + (argc > 1 ? 2 : argc), argv + argc);
    std::string verb = argc > 1 ? argv[1] : "";
    try {
        if (verb == "spawn") return spawn(args);
        if (verb == "inspect") return inspect(args);
        die_refused("usage: fpm-replica-helper spawn --release DIR --stable-path DIR "
                    "[--config FILE] [--read-only (a no-op: read-only is the default)] -- COMMAND [ARGS...] | "
                    "inspect --pid PID --stable-path DIR");
    } catch (const Refusal& r) {
        die_refused(r.message);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fpm-replica-helper: internal error: %s\n", e.what());
        return kExitFailed;
    }
}
