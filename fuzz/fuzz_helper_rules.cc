// What fpm-replica-helper reads before it does anything as root: its
// argument vector (one word per line), its configuration file, the path rules
// and the mountinfo of a process it inspects. A Refusal is the expected answer
// to bad input; any other exception, a crash or an accepted value that breaks
// the rules is a finding.
#include <cstdio>
#include <string>

#include "fuzz_input.h"
#include "helper_rules.h"

using namespace fpmr::helper;
using fpmr::fuzz::violated;

namespace {

// Runs `f`, swallowing the Refusal it may throw; true when it did not refuse.
template <typename F>
bool accepted(F&& f) {
    try {
        f();
        return true;
    } catch (const Refusal& refusal) {
        if (refusal.message.empty()) violated("a Refusal without a message");
        return false;
    }
}

void check_syntax_holds(const char* what, const std::string& path) {
    if (!accepted([&] { check_path_syntax(what, path); })) violated("an accepted path breaks the path rules");
}

// As the kernel writes a path into mountinfo: space, tab, newline and
// backslash as octal escapes.
std::string mountinfo_escaped(const std::string& path) {
    std::string out;
    for (char c : path) {
        if (c == ' ' || c == '\t' || c == '\n' || c == '\\') {
            char escape[5];
            std::snprintf(escape, sizeof escape, "\\%03o", static_cast<unsigned char>(c));
            out += escape;
        } else {
            out += c;
        }
    }
    return out;
}

// A release bind-mounted at a stable path, both named by the input, is
// found again from the mountinfo the kernel would write for them.
void check_mountinfo_round_trip(const std::string& release, const std::string& stable_path) {
    if (release.empty() || release[0] != '/' || stable_path.empty() || stable_path[0] != '/') return;
    const std::string host = "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n";
    const std::string process = host + "95 22 8:1 " + mountinfo_escaped(release) + " " +
                                mountinfo_escaped(stable_path) + " ro,nosuid,nodev - ext4 /dev/sda1 rw\n";
    if (release_from_mountinfo(process, host, stable_path) != release) {
        violated("release_from_mountinfo does not find the release mounted at the stable path");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(fpmr::fuzz::as_text(data, size));
    const std::vector<std::string> words = fpmr::fuzz::split_lines(text);

    SpawnArgs spawn;
    if (accepted([&] { spawn = parse_spawn_args(words); })) {
        check_syntax_holds("--release", spawn.release);
        check_syntax_holds("--stable-path", spawn.stable_path);
        if (spawn.command.empty() || spawn.command[0].empty() || spawn.stable_path == "/") {
            violated("parse_spawn_args accepted no command or '/' as the stable path");
        }
    }
    InspectArgs inspect;
    if (accepted([&] { inspect = parse_inspect_args(words); })) {
        check_syntax_holds("--stable-path", inspect.stable_path);
        if (inspect.pid <= 0) violated("parse_inspect_args accepted a pid <= 0");
    }
    HelperConfig config;
    if (accepted([&] { config = parse_config(text, "/etc/fpm-replica/helper.conf"); })) {
        for (const std::string& root : config.release_roots) check_syntax_holds("release-root", root);
        for (const std::string& stable : config.stable_paths) check_syntax_holds("stable-path", stable);
        if (!words.empty()) {
            accepted([&] { check_stable_path_allowed(words[0], config); });
            ReleaseLocation where;
            if (accepted([&] { where = locate_release(words[0], config.release_roots); })) {
                // What the helper then opens beneath the root's descriptor: a
                // relative, non-empty rest (never the root itself, never absolute).
                if (where.below_root.empty() || where.below_root[0] == '/') {
                    violated("locate_release returned no relative path below the root");
                }
            }
        }
    }
    accepted([&] { check_path_syntax("--release", text); });
    for (const std::string& entry : allowed_environment(words)) {
        if (entry.rfind("FPM_REPLICA_", 0) != 0 && entry.rfind("PATH=", 0) != 0 &&
            entry.rfind("LANG=", 0) != 0) {
            violated("allowed_environment let another variable through");
        }
    }

    // The inspected process's mountinfo, the host's and the stable path.
    const std::vector<std::string> parts = fpmr::fuzz::split_parts(text, 3);
    accepted([&] { (void)release_from_mountinfo(parts[0], parts[1], parts[2]); });
    const std::vector<std::string> paths = fpmr::fuzz::split_parts(text, 2);
    check_mountinfo_round_trip(paths[0], paths[1]);
    return 0;
}
