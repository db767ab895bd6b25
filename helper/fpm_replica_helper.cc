// fpm-replica-helper: starts one php-fpm master in a private mount namespace
// with its release bind-mounted over a stable path, with every privilege it
// does not need dropped. Small and strict in the manner of bubblewrap: every
// input is checked before anything is touched, every privilege change is a
// named step that is read back, and failure is one line and a fixed exit code
// (2: refused input, 1: a system call failed).
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
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "helper_rules.h"

extern char** environ;

namespace {

using namespace fpmr::helper;

constexpr int kExitFailed = 1;
constexpr int kExitRefused = 2;

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

std::string real_path_or_refuse(const std::string& what, const std::string& path) {
    char* real = ::realpath(path.c_str(), nullptr);
    if (!real) die_refused(what + " '" + path + "' does not exist (" + std::strerror(errno) + ")");
    std::string out = real;
    std::free(real);
    return out;
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

struct CheckedPaths {
    int release_fd;             // O_PATH descriptor of the resolved release
    std::string release_real;
    std::string stable_path;
};

// Phase 1: every path is checked; the release is resolved once and held by
// descriptor, so a symlink swapped later cannot redirect the mount.
CheckedPaths check_paths(const SpawnArgs& args, const HelperConfig& config) {
    std::vector<std::string> real_roots;
    for (const auto& root : config.release_roots) {
        char* real = ::realpath(root.c_str(), nullptr);
        if (real) {
            real_roots.emplace_back(real);
            std::free(real);
        }
    }
    CheckedPaths out;
    out.release_real = real_path_or_refuse("--release", args.release);
    check_release_allowed(args.release, out.release_real, real_roots);
    out.release_fd = ::open(out.release_real.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (out.release_fd < 0) die_refused("--release '" + args.release + "' is not a directory");

    check_stable_path_allowed(args.stable_path, config);
    struct stat st;
    if (::lstat(args.stable_path.c_str(), &st) != 0) {
        die_refused("--stable-path '" + args.stable_path + "' does not exist");
    }
    if (S_ISLNK(st.st_mode)) die_refused("--stable-path '" + args.stable_path + "' is a symlink");
    if (!S_ISDIR(st.st_mode)) die_refused("--stable-path '" + args.stable_path + "' is not a directory");
    if (real_path_or_refuse("--stable-path", args.stable_path) != args.stable_path) {
        die_refused("--stable-path '" + args.stable_path + "' lies under a symlink");
    }
    for (const auto& root : real_roots) {
        if (args.stable_path == root || args.stable_path.rfind(root + "/", 0) == 0) {
            die_refused("--stable-path '" + args.stable_path + "' lies inside release-root '" + root + "'");
        }
    }
    out.stable_path = args.stable_path;
    return out;
}

// Phase 2: a private mount namespace, propagation made private before any
// mount so nothing leaks back to the host, then the bind mount, read back.
void mount_release(const CheckedPaths& paths, bool read_only) {
    if (::unshare(CLONE_NEWNS) != 0) die_with_error("unshare(CLONE_NEWNS)");
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
        die_with_error("making / recursively private");
    }
    // The descriptor opened before unshare belongs to the old namespace's
    // mount and cannot be a bind source here: open the checked real path
    // again (no symlink followed) and make sure it is the same directory.
    int fd = ::open(paths.release_real.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat checked, reopened;
    if (fd < 0 || ::fstat(paths.release_fd, &checked) != 0 || ::fstat(fd, &reopened) != 0 ||
        checked.st_dev != reopened.st_dev || checked.st_ino != reopened.st_ino) {
        std::fprintf(stderr, "fpm-replica-helper: %s changed while it was being checked\n",
                     paths.release_real.c_str());
        std::exit(kExitFailed);
    }
    std::string source = "/proc/self/fd/" + std::to_string(fd);
    if (::mount(source.c_str(), paths.stable_path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
        die_with_error("bind-mounting %s over %s", paths.release_real.c_str(), paths.stable_path.c_str());
    }
    ::close(fd);
    if (read_only &&
        ::mount(nullptr, paths.stable_path.c_str(), nullptr,
                MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0) {
        die_with_error("remounting %s read-only", paths.stable_path.c_str());
    }
    // Read back: the stable path must now be the release directory itself.
    struct stat release_st, stable_st;
    if (::fstat(paths.release_fd, &release_st) != 0 || ::stat(paths.stable_path.c_str(), &stable_st) != 0 ||
        release_st.st_dev != stable_st.st_dev || release_st.st_ino != stable_st.st_ino) {
        std::fprintf(stderr, "fpm-replica-helper: %s is not %s after the bind mount\n",
                     paths.stable_path.c_str(), paths.release_real.c_str());
        std::exit(kExitFailed);
    }
    ::close(paths.release_fd);
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
    CheckedPaths paths = check_paths(parsed, config);
    mount_release(paths, parsed.read_only);
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
                    "[--config FILE] [--read-only] -- COMMAND [ARGS...] | "
                    "inspect --pid PID --stable-path DIR");
    } catch (const Refusal& r) {
        die_refused(r.message);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fpm-replica-helper: internal error: %s\n", e.what());
        return kExitFailed;
    }
}
