// fpm-replica-helper's refusals: arguments, configuration, paths.
#include <catch2/catch.hpp>

#include "helper_rules.h"

using namespace fpmr::helper;

CATCH_TRANSLATE_EXCEPTION(const Refusal& r) { return r.message; }

namespace {
std::string refusal_of(const std::vector<std::string>& args) {
    try {
        parse_spawn_args(args);
    } catch (const Refusal& r) {
        return r.message;
    }
    return "";
}
const std::vector<std::string> kGood{"--release", "/srv/app/releases/r1", "--stable-path",
                                     "/srv/app/live", "--", "/usr/sbin/php-fpm8.2", "-F"};
}  // namespace

TEST_CASE("spawn arguments parse", "[helper]") {
    SpawnArgs a = parse_spawn_args(kGood);
    CHECK(a.release == "/srv/app/releases/r1");
    CHECK(a.stable_path == "/srv/app/live");
    CHECK_FALSE(a.config_given);
    CHECK_FALSE(a.read_only);
    CHECK(a.command == std::vector<std::string>{"/usr/sbin/php-fpm8.2", "-F"});
    SpawnArgs b = parse_spawn_args({"--read-only", "--config", "/etc/x.conf", "--release", "/a/b/",
                                    "--stable-path", "/s/", "--", "cmd", "--", "x"});
    CHECK(b.read_only);
    CHECK(b.config_given);
    CHECK(b.release == "/a/b");
    CHECK(b.stable_path == "/s");
    CHECK(b.command == std::vector<std::string>{"cmd", "--", "x"});
}

TEST_CASE("unsafe or malformed spawn arguments are refused", "[helper]") {
    CHECK(refusal_of({"--release", "srv/app", "--stable-path", "/s", "--", "x"}) ==
          "--release 'srv/app' is not an absolute path");
    CHECK(refusal_of({"--release", "/srv/app/../etc", "--stable-path", "/s", "--", "x"}) ==
          "--release '/srv/app/../etc' contains '..'");
    CHECK(refusal_of({"--release", "/srv/./app", "--stable-path", "/s", "--", "x"}) ==
          "--release '/srv/./app' contains '.'");
    CHECK(refusal_of({"--release", "/r", "--stable-path", "live", "--", "x"}) ==
          "--stable-path 'live' is not an absolute path");
    CHECK(refusal_of({"--release", "/r", "--stable-path", "/s/..", "--", "x"}) ==
          "--stable-path '/s/..' contains '..'");
    CHECK(refusal_of({"--release", "/r", "--stable-path", "/", "--", "x"}) ==
          "--stable-path cannot be '/'");
    CHECK(refusal_of({"--release", "/r", "--stable-path", "/s"}) == "no command after '--'");
    CHECK(refusal_of({"--release", "/r", "--stable-path", "/s", "--"}) == "no command after '--'");
    CHECK(refusal_of({"--stable-path", "/s", "--", "x"}) == "--release DIR is required");
    CHECK(refusal_of({"--release", "/r", "--", "x"}) == "--stable-path DIR is required");
    CHECK(refusal_of({"--release", "/r", "--release", "/q", "--stable-path", "/s", "--", "x"}) ==
          "--release given twice");
    CHECK(refusal_of({"--release"}) == "--release needs a value");
    CHECK(refusal_of({"--frobnicate", "--", "x"}) == "unknown argument '--frobnicate'");
    CHECK(refusal_of({"--release", "/r", "--stable-path", "/s", "--config", "etc/x", "--", "x"}) ==
          "--config 'etc/x' is not an absolute path");
    CHECK(refusal_of({"--release", "", "--stable-path", "/s", "--", "x"}) == "--release DIR is required");
}

TEST_CASE("inspect arguments", "[helper]") {
    InspectArgs a = parse_inspect_args({"--pid", "123", "--stable-path", "/srv/app/live/"});
    CHECK(a.pid == 123);
    CHECK(a.stable_path == "/srv/app/live");
    CHECK_THROWS_AS(parse_inspect_args({"--pid", "12x", "--stable-path", "/s"}), Refusal);
    CHECK_THROWS_AS(parse_inspect_args({"--pid", "-4", "--stable-path", "/s"}), Refusal);
    CHECK_THROWS_AS(parse_inspect_args({"--stable-path", "/s"}), Refusal);
    CHECK_THROWS_AS(parse_inspect_args({"--pid", "1", "--stable-path", "s"}), Refusal);
}

TEST_CASE("helper.conf parses, with comments", "[helper]") {
    HelperConfig c = parse_config("# roots\nrelease-root /srv/app/releases  # deploys\n\n"
                                  "stable-path /srv/app/live/\nrelease-root /srv/b/releases\n",
                                  "/etc/fpm-replica/helper.conf");
    CHECK(c.release_roots == std::vector<std::string>{"/srv/app/releases", "/srv/b/releases"});
    CHECK(c.stable_paths == std::vector<std::string>{"/srv/app/live"});
    CHECK_FALSE(c.writable_release);  // read-only unless asked
    CHECK(parse_config("release-root /r\nstable-path /s\nwritable-release yes\n", "h").writable_release);
    CHECK_FALSE(parse_config("release-root /r\nstable-path /s\nwritable-release no # default\n", "h")
                    .writable_release);
}

TEST_CASE("bad helper.conf lines are refused naming the line", "[helper]") {
    auto refusal = [](const std::string& text) {
        try {
            parse_config(text, "h.conf");
        } catch (const Refusal& r) {
            return r.message;
        }
        return std::string();
    };
    CHECK(refusal("release-root /r\nstable-path /s\nmount-anything /x\n") ==
          "h.conf:3: unknown keyword 'mount-anything'");
    CHECK(refusal("release-root relative\nstable-path /s\n") ==
          "h.conf:1: release-root 'relative' is not an absolute path");
    CHECK(refusal("release-root /r /q\nstable-path /s\n") ==
          "h.conf:1: expected 'release-root DIR' or 'stable-path DIR'");
    CHECK(refusal("release-root /\nstable-path /s\n") == "h.conf:1: release-root cannot be '/'");
    CHECK(refusal("stable-path /s\n") == "h.conf: no release-root line");
    CHECK(refusal("release-root /r\n") == "h.conf: no stable-path line");
    CHECK(refusal("release-root /r\nstable-path /s\nwritable-release true\n") ==
          "h.conf:3: expected 'writable-release yes' or 'writable-release no'");
    CHECK(refusal("release-root /r\nstable-path /s\nwritable-release\n") ==
          "h.conf:3: expected 'writable-release yes' or 'writable-release no'");
    CHECK(refusal("release-root /r\nstable-path /s\nwritable-release yes no\n") ==
          "h.conf:3: expected 'writable-release yes' or 'writable-release no'");
    CHECK(refusal("writable-release no\nrelease-root /r\nstable-path /s\nwritable-release yes\n") ==
          "h.conf:4: writable-release given twice");
}

TEST_CASE("configuration file ownership and mode", "[helper]") {
    CHECK_NOTHROW(check_config_file_stat("c", 0, 0100644, true));
    CHECK_NOTHROW(check_config_file_stat("c", 0, 0100600, true));
    CHECK_THROWS_WITH(check_config_file_stat("c", 1000, 0100644, true),
                      "configuration 'c' is not owned by root");
    CHECK_THROWS_WITH(check_config_file_stat("c", 0, 0100664, true),
                      "configuration 'c' is writable by group or others");
    CHECK_THROWS_WITH(check_config_file_stat("c", 0, 0100646, true),
                      "configuration 'c' is writable by group or others");
    CHECK_THROWS_WITH(check_config_file_stat("c", 0, 0040755, false),
                      "configuration 'c' is not a regular file");
}

TEST_CASE("releases must lie under a release root; stable paths must be listed", "[helper]") {
    std::vector<std::string> roots{"/srv/app/releases", "/srv/app/releases/nested"};
    ReleaseLocation at = locate_release("/srv/app/releases/r1", roots);
    CHECK(at.root == "/srv/app/releases");
    CHECK(at.below_root == "r1");
    ReleaseLocation deep = locate_release("/srv/app/releases/nested/r2/x", roots);  // the longest root
    CHECK(deep.root == "/srv/app/releases/nested");
    CHECK(deep.below_root == "r2/x");
    CHECK_THROWS_WITH(locate_release("/etc", roots),
                      "--release '/etc' lies outside every release-root of the configuration");
    CHECK_THROWS_AS(locate_release("/srv/app/releases", roots), Refusal);  // the root itself
    CHECK_THROWS_AS(locate_release("/srv/app/releases2/r1", roots), Refusal);
    CHECK(locate_release("/r/x", {"/"}).below_root == "r/x");
    HelperConfig c{{"/r"}, {"/srv/app/live"}};
    CHECK_NOTHROW(check_stable_path_allowed("/srv/app/live", c));
    CHECK_THROWS_WITH(check_stable_path_allowed("/srv/app/other", c),
                      "--stable-path '/srv/app/other' is not a stable-path of the configuration");
}

TEST_CASE("only root can change what lies beneath a trusted directory", "[helper]") {
    CHECK(untrusted_directory_reason(0, 0, 040755, "root", "root").empty());
    CHECK(untrusted_directory_reason(0, 0, 041777, "root", "root").empty());  // /tmp
    CHECK(untrusted_directory_reason(0, 50, 041775, "root", "staff").empty());
    CHECK(untrusted_directory_reason(1001, 1001, 040755, "deploy", "deploy") ==
          "is owned by deploy (uid 1001)");
    CHECK(untrusted_directory_reason(1001, 0, 041777, "deploy", "root") ==
          "is owned by deploy (uid 1001)");  // sticky, but its owner may do anything there
    CHECK(untrusted_directory_reason(0, 50, 040775, "root", "staff") ==
          "is owned by root but writable by group staff (gid 50) without the sticky bit");
    CHECK(untrusted_directory_reason(0, 0, 040757, "root", "root") ==
          "is owned by root but writable by others without the sticky bit");
}

TEST_CASE("only FPM_REPLICA_*, PATH and LANG reach the command", "[helper]") {
    auto env = allowed_environment({"PATH=/usr/bin", "LD_PRELOAD=/tmp/evil.so", "LANG=C.UTF-8",
                                    "FPM_REPLICA_NAME=a", "HOME=/root", "PHPRC=/tmp", "LANGUAGE=x"});
    CHECK(env == std::vector<std::string>{"PATH=/usr/bin", "LANG=C.UTF-8", "FPM_REPLICA_NAME=a"});
}

TEST_CASE("the release behind a stable path, from mountinfo", "[helper]") {
    std::string host =
        "22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        "30 22 0:25 / /tmp rw - tmpfs tmpfs rw\n";
    std::string theirs = host +
        "99 22 254:0 /srv/app/releases/r2 /srv/app/live rw,relatime - ext4 /dev/vda rw\n";
    CHECK(release_from_mountinfo(theirs, host, "/srv/app/live") == "/srv/app/releases/r2");
    std::string in_tmp = host + "99 30 0:25 /fpmr/releases/r1 /srv/app/live rw - tmpfs tmpfs rw\n";
    CHECK(release_from_mountinfo(in_tmp, host, "/srv/app/live") == "/tmp/fpmr/releases/r1");
    std::string spaced = host + "99 22 254:0 /srv/my\\040app/r1 /srv/app/live rw - ext4 /dev/vda rw\n";
    CHECK(release_from_mountinfo(spaced, host, "/srv/app/live") == "/srv/my app/r1");
    CHECK(release_from_mountinfo(host, host, "/srv/app/live").empty());
}

// Found by fuzz/fuzz_helper_rules.cc: the kernel leaves '\r', '\v' and '\f'
// unescaped in mountinfo paths, and splitting fields with `>>` cut a release
// named by the deploy user there, so inspect reported another release.
TEST_CASE("mountinfo fields are split on spaces only", "[helper]") {
    std::string host = "22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n";
    std::string forged = host +
        "99 22 254:0 /srv/app/releases/a\r/srv/app/live /srv/app/live rw - ext4 /dev/vda rw\n";
    CHECK(release_from_mountinfo(forged, host, "/srv/app/live") ==
          "/srv/app/releases/a\r/srv/app/live");
    std::string vertical = host + "99 22 254:0 /srv/app/releases/b\v1 /srv/app/live\f rw - ext4 /dev/vda rw\n";
    CHECK(release_from_mountinfo(vertical, host, "/srv/app/live").empty());
    CHECK(release_from_mountinfo(vertical, host, "/srv/app/live\f") == "/srv/app/releases/b\v1");
}
