// Validation rules of fpm-replica-helper.
#include "helper_rules.h"

#include <cstdlib>
#include <sstream>

#include "directory_trust.h"

namespace fpmr::helper {

namespace {

[[noreturn]] void refuse(const std::string& message) { throw Refusal{message}; }

bool path_is_under(const std::string& path, const std::string& dir) {
    if (dir == "/") return path.size() > 1 && path[0] == '/';
    return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
           path[dir.size()] == '/';
}

std::string strip_trailing_slashes(std::string p) {
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    return p;
}

// Unescapes mountinfo's octal escapes (\040 for a space).
std::string unescape_mountinfo(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size()) {
            out += static_cast<char>(std::strtol(s.substr(i + 1, 3).c_str(), nullptr, 8));
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

struct MountLine {
    std::string device;       // major:minor
    std::string root;         // path inside the filesystem
    std::string mount_point;
};

std::vector<MountLine> parse_mountinfo(const std::string& text) {
    std::vector<MountLine> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        // Fields are separated by single spaces; the kernel escapes only
        // space, tab, newline and backslash in paths, so a path may hold a
        // '\r' or '\v' that `>>` would take for a separator.
        std::vector<std::string> fields;
        std::istringstream words(line);
        for (std::string field; fields.size() < 5 && std::getline(words, field, ' ');) {
            fields.push_back(field);
        }
        if (fields.size() == 5) {
            out.push_back({fields[2], unescape_mountinfo(fields[3]), unescape_mountinfo(fields[4])});
        }
    }
    return out;
}

}  // namespace

void check_path_syntax(const std::string& what, const std::string& path) {
    if (path.empty()) refuse(what + " is empty");
    if (path[0] != '/') refuse(what + " '" + path + "' is not an absolute path");
    std::istringstream parts(path);
    std::string part;
    while (std::getline(parts, part, '/')) {
        if (part == "..") refuse(what + " '" + path + "' contains '..'");
        if (part == ".") refuse(what + " '" + path + "' contains '.'");
    }
    for (char c : path) {
        if (c == '\n' || c == '\0') refuse(what + " contains a control character");
    }
}

SpawnArgs parse_spawn_args(const std::vector<std::string>& args) {
    SpawnArgs out;
    size_t i = 0;
    auto value = [&](const std::string& flag) -> std::string {
        if (i + 1 >= args.size()) refuse(flag + " needs a value");
        return args[++i];
    };
    for (; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--") {
            out.command.assign(args.begin() + static_cast<long>(i) + 1, args.end());
            break;
        }
        if (a == "--release") {
            if (!out.release.empty()) refuse("--release given twice");
            out.release = value(a);
        } else if (a == "--stable-path") {
            if (!out.stable_path.empty()) refuse("--stable-path given twice");
            out.stable_path = value(a);
        } else if (a == "--config") {
            if (out.config_given) refuse("--config given twice");
            out.config_path = value(a);
            out.config_given = true;
        } else if (a == "--read-only") {
            out.read_only = true;
        } else {
            refuse("unknown argument '" + a + "'");
        }
    }
    if (out.release.empty()) refuse("--release DIR is required");
    if (out.stable_path.empty()) refuse("--stable-path DIR is required");
    if (out.command.empty()) refuse("no command after '--'");
    check_path_syntax("--release", out.release);
    check_path_syntax("--stable-path", out.stable_path);
    if (out.config_given) check_path_syntax("--config", out.config_path);
    if (out.command[0].empty()) refuse("the command is empty");
    out.release = strip_trailing_slashes(out.release);
    out.stable_path = strip_trailing_slashes(out.stable_path);
    if (out.stable_path == "/") refuse("--stable-path cannot be '/'");
    return out;
}

InspectArgs parse_inspect_args(const std::vector<std::string>& args) {
    InspectArgs out;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if ((a == "--pid" || a == "--stable-path") && i + 1 >= args.size()) {
            refuse(a + " needs a value");
        }
        if (a == "--pid") {
            const std::string& v = args[++i];
            char* end = nullptr;
            long pid = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end || pid <= 0 || pid > 4194304) refuse("--pid '" + v + "' is not a process id");
            out.pid = static_cast<int>(pid);
        } else if (a == "--stable-path") {
            out.stable_path = args[++i];
        } else {
            refuse("unknown argument '" + a + "'");
        }
    }
    if (!out.pid) refuse("--pid PID is required");
    if (out.stable_path.empty()) refuse("--stable-path DIR is required");
    check_path_syntax("--stable-path", out.stable_path);
    out.stable_path = strip_trailing_slashes(out.stable_path);
    return out;
}

HelperConfig parse_config(const std::string& text, const std::string& path) {
    HelperConfig config;
    bool writable_seen = false;
    std::istringstream in(text);
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
        size_t hash = line.find('#');
        if (hash != std::string::npos) line.erase(hash);
        std::istringstream words(line);
        std::string keyword, dir, extra;
        if (!(words >> keyword)) continue;
        std::string where = path + ":" + std::to_string(number) + ": ";
        if (keyword == "writable-release") {
            std::string value;
            if (!(words >> value) || (words >> extra) || (value != "yes" && value != "no")) {
                refuse(where + "expected 'writable-release yes' or 'writable-release no'");
            }
            if (writable_seen) refuse(where + "writable-release given twice");
            writable_seen = true;
            config.writable_release = value == "yes";
            continue;
        }
        if (keyword != "release-root" && keyword != "stable-path") {
            refuse(where + "unknown keyword '" + keyword + "'");
        }
        if (!(words >> dir) || (words >> extra)) {
            refuse(where + "expected 'release-root DIR' or 'stable-path DIR'");
        }
        try {
            check_path_syntax(keyword, dir);
        } catch (const Refusal& r) {
            refuse(where + r.message);
        }
        dir = strip_trailing_slashes(dir);
        if (dir == "/") refuse(where + keyword + " cannot be '/'");
        (keyword == "release-root" ? config.release_roots : config.stable_paths).push_back(dir);
    }
    if (config.release_roots.empty()) refuse(path + ": no release-root line");
    if (config.stable_paths.empty()) refuse(path + ": no stable-path line");
    return config;
}

void check_config_file_stat(const std::string& path, unsigned owner_uid, unsigned mode,
                            bool regular_file) {
    if (!regular_file) refuse("configuration '" + path + "' is not a regular file");
    if (owner_uid != 0) refuse("configuration '" + path + "' is not owned by root");
    if (mode & 022) refuse("configuration '" + path + "' is writable by group or others");
}

ReleaseLocation locate_release(const std::string& release, const std::vector<std::string>& real_roots) {
    const std::string* best = nullptr;
    for (const auto& root : real_roots) {
        if (path_is_under(release, root) && (!best || root.size() > best->size())) best = &root;
    }
    if (!best) refuse("--release '" + release + "' lies outside every release-root of the configuration");
    std::string below = release.substr(best->size());
    while (!below.empty() && below[0] == '/') below.erase(0, 1);
    return {*best, below};
}

std::string untrusted_directory_reason(unsigned owner_uid, unsigned owner_gid, unsigned mode,
                                       const std::string& owner_name, const std::string& group_name) {
    switch (directory_trust(owner_uid, mode)) {
        case DirectoryTrust::RootOnly: return "";
        case DirectoryTrust::OtherOwner:
            return "is owned by " + owner_name + " (uid " + std::to_string(owner_uid) + ")";
        case DirectoryTrust::GroupWritable:
            return "is owned by root but writable by group " + group_name + " (gid " +
                   std::to_string(owner_gid) + ") without the sticky bit";
        case DirectoryTrust::OthersWritable:
            return "is owned by root but writable by others without the sticky bit";
    }
    return "is of unknown trust";
}

void check_stable_path_allowed(const std::string& stable_path, const HelperConfig& config) {
    for (const auto& allowed : config.stable_paths) {
        if (allowed == stable_path) return;
    }
    refuse("--stable-path '" + stable_path + "' is not a stable-path of the configuration");
}

std::vector<std::string> allowed_environment(const std::vector<std::string>& environ_entries) {
    std::vector<std::string> out;
    for (const auto& e : environ_entries) {
        if (e.rfind("FPM_REPLICA_", 0) == 0 || e.rfind("PATH=", 0) == 0 ||
            e.rfind("LANG=", 0) == 0) {
            out.push_back(e);
        }
    }
    return out;
}

std::string release_from_mountinfo(const std::string& process_mountinfo,
                                   const std::string& host_mountinfo,
                                   const std::string& stable_path) {
    const MountLine* bind = nullptr;
    auto mounts = parse_mountinfo(process_mountinfo);
    for (const auto& m : mounts) {
        if (m.mount_point == stable_path) bind = &m;  // the last one is on top
    }
    if (!bind) return {};
    // Where the same filesystem is mounted at its root on the host side.
    for (const auto& h : parse_mountinfo(host_mountinfo)) {
        if (h.device != bind->device) continue;
        if (bind->root == h.root || path_is_under(bind->root, h.root) || h.root == "/") {
            std::string rel = h.root == "/" ? bind->root : bind->root.substr(h.root.size());
            std::string base = h.mount_point == "/" ? "" : h.mount_point;
            return base + (rel.empty() ? "/" : rel);
        }
    }
    return bind->root;
}

}  // namespace fpmr::helper
