// The rules fpm-replica-helper enforces before it touches anything: argument
// parsing, its configuration file, and which paths are acceptable. No
// privileged operation here, so Catch2 tests exercise every refusal.
#pragma once

#include <string>
#include <vector>

namespace fpmr::helper {

// Every refusal carries one fixed sentence; the binary prints it and exits 2.
struct Refusal {
    std::string message;
};

struct HelperConfig {
    std::vector<std::string> release_roots;  // normalised absolute paths
    std::vector<std::string> stable_paths;
    // `writable-release yes`: mount the release without MS_RDONLY (still
    // nosuid,nodev). Off by default: PHP that can write its own code turns a
    // file upload bug into code execution; shared state belongs in a
    // `shared/` directory outside the release.
    bool writable_release = false;
};

struct SpawnArgs {
    std::string release;
    std::string stable_path;
    std::string config_path;  // empty: the default
    bool config_given = false;
    bool read_only = false;  // --read-only: accepted, a no-op (read-only is the default)
    std::vector<std::string> command;
};

struct InspectArgs {
    int pid = 0;
    std::string stable_path;
};

// Overridable at build time only for the test build of the binary
// (fpm-replica-helper-testconf), which must not depend on /etc.
#ifndef FPMR_HELPER_DEFAULT_CONFIG
#define FPMR_HELPER_DEFAULT_CONFIG "/etc/fpm-replica/helper.conf"
#endif
constexpr const char* kDefaultConfigPath = FPMR_HELPER_DEFAULT_CONFIG;

// argv without the program name and the sub-command. Throws Refusal.
SpawnArgs parse_spawn_args(const std::vector<std::string>& args);
InspectArgs parse_inspect_args(const std::vector<std::string>& args);

// The text of helper.conf. Throws Refusal naming the line.
HelperConfig parse_config(const std::string& text, const std::string& path);

// Ownership and mode rules for the configuration file: owned by root, not
// writable by group or others, a regular file. Throws Refusal.
void check_config_file_stat(const std::string& path, unsigned owner_uid, unsigned mode,
                            bool regular_file);

// A path an operator passed: absolute, no "." or ".." component, no empty
// component games. Throws Refusal naming `what` ("--release").
void check_path_syntax(const std::string& what, const std::string& path);

// Where a release lies: the release root (as resolved at start) it is
// strictly under, and the rest of its path below that root, which the
// helper then opens beneath the root's descriptor without following any
// symlink. The longest matching root wins. Throws Refusal when `release` is
// under no root or is a root itself.
struct ReleaseLocation {
    std::string root;
    std::string below_root;  // relative, without a leading '/'
};
ReleaseLocation locate_release(const std::string& release, const std::vector<std::string>& real_roots);

// "" when only root can change what lies beneath a directory with this
// owner and mode (the rule of core/directory_trust.h, which the module's
// supervisor applies too). Otherwise the reason, naming the owner
// ("is owned by deploy (uid 1001)"). ACLs are not read (see docs/helper.md).
std::string untrusted_directory_reason(unsigned owner_uid, unsigned owner_gid, unsigned mode,
                                       const std::string& owner_name, const std::string& group_name);

// The stable path must be listed in the configuration, exactly. Throws Refusal.
void check_stable_path_allowed(const std::string& stable_path, const HelperConfig& config);

// The environment the command gets: FPM_REPLICA_*, PATH and LANG from `environ`.
std::vector<std::string> allowed_environment(const std::vector<std::string>& environ_entries);

// The release mounted at `stable_path` in a mountinfo text, as a host path:
// the bind mount's root joined to where its filesystem is mounted in
// `host_mountinfo`. Empty when nothing is mounted there.
std::string release_from_mountinfo(const std::string& process_mountinfo,
                                   const std::string& host_mountinfo,
                                   const std::string& stable_path);

}  // namespace fpmr::helper
