// Opening directories by descriptor without following symlinks, both ways
// (openat2 and the component walk), on a scratch tree of the test's own.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <vector>

#include "held_paths.h"
#include "helper_rules.h"

using namespace fpmr::helper;

namespace {

// A scratch tree: root/releases/r1/public, root/releases/link -> r1,
// root/releases/up -> .., root/afile, root/abs -> /etc.
struct Scratch {
    std::string root;
    Scratch() {
        char templ[] = "/tmp/fpmr-held-paths-XXXXXX";
        root = ::mkdtemp(templ);
        ::mkdir((root + "/releases").c_str(), 0755);
        ::mkdir((root + "/releases/r1").c_str(), 0755);
        ::mkdir((root + "/releases/r1/public").c_str(), 0755);
        ::symlink("r1", (root + "/releases/link").c_str());
        ::symlink("..", (root + "/releases/up").c_str());
        ::symlink("/etc", (root + "/abs").c_str());
        ::close(::open((root + "/afile").c_str(), O_CREAT | O_WRONLY, 0644));
    }
    ~Scratch() {
        std::string cmd = "rm -rf '" + root + "'";
        (void)std::system(cmd.c_str());
    }
};

struct stat stat_of(int fd) {
    struct stat st {};
    ::fstat(fd, &st);
    return st;
}

struct stat stat_of(const std::string& path) {
    struct stat st {};
    ::stat(path.c_str(), &st);
    return st;
}

int errno_of_absolute(const std::string& path, Resolution how) {
    errno = 0;
    HeldFd fd = open_directory_absolute(path, how);
    return fd.valid() ? 0 : errno;
}

}  // namespace

TEST_CASE("directories open without following any symlink, both ways", "[helper]") {
    Scratch s;
    for (Resolution how : {Resolution::kOpenat2, Resolution::kWalk}) {
        INFO((how == Resolution::kOpenat2 ? "openat2" : "walk"));
        HeldFd r1 = open_directory_absolute(s.root + "/releases/r1", how);
        REQUIRE(r1.valid());
        CHECK(stat_of(r1.get()).st_ino == stat_of(s.root + "/releases/r1").st_ino);
        CHECK(errno_of_absolute(s.root + "/releases/link", how) == ELOOP);         // last component
        CHECK(errno_of_absolute(s.root + "/releases/link/public", how) == ELOOP);  // a middle one
        CHECK(errno_of_absolute(s.root + "/abs", how) == ELOOP);
        CHECK(errno_of_absolute(s.root + "/afile", how) == ENOTDIR);
        CHECK(errno_of_absolute(s.root + "/missing", how) == ENOENT);

        HeldFd releases = open_directory_absolute(s.root + "/releases", how);
        REQUIRE(releases.valid());
        HeldFd public_dir = open_directory_beneath(releases.get(), "r1/public", how);
        REQUIRE(public_dir.valid());
        CHECK(stat_of(public_dir.get()).st_ino == stat_of(s.root + "/releases/r1/public").st_ino);
        errno = 0;
        CHECK_FALSE(open_directory_beneath(releases.get(), "up/afile", how).valid());
        CHECK(errno == ELOOP);
        errno = 0;
        CHECK_FALSE(open_directory_beneath(releases.get(), "../releases/r1", how).valid());
        CHECK(errno == EXDEV);  // never above the directory it starts from
        HeldFd same = open_directory_beneath(releases.get(), "", how);
        REQUIRE(same.valid());
        CHECK(stat_of(same.get()).st_ino == stat_of(releases.get()).st_ino);
    }
}

TEST_CASE("directories above one being opened are visited from the top, as opened", "[helper]") {
    Scratch s;
    std::string path = s.root + "/releases/r1/public";
    std::vector<std::string> seen;
    HeldFd held = open_directory_visiting_ancestors(path, [&](const Ancestor& a) {
        seen.push_back(a.path);
        CHECK(a.st.st_ino == stat_of(a.path).st_ino);
    });
    REQUIRE(held.valid());
    CHECK(stat_of(held.get()).st_ino == stat_of(path).st_ino);
    CHECK(seen == std::vector<std::string>{"/", "/tmp", s.root, s.root + "/releases", s.root + "/releases/r1"});

    // A refusal stops the walk where it is: nothing below is opened.
    seen.clear();
    CHECK_THROWS_AS(open_directory_visiting_ancestors(path,
                                                      [&](const Ancestor& a) {
                                                          seen.push_back(a.path);
                                                          if (a.path == s.root) throw Refusal{"no"};
                                                      }),
                    Refusal);
    CHECK(seen == std::vector<std::string>{"/", "/tmp", s.root});

    // No symlink followed, in the middle or at the end.
    for (const std::string& bad : {s.root + "/releases/link/public", s.root + "/releases/link"}) {
        errno = 0;
        CHECK_FALSE(open_directory_visiting_ancestors(bad, [](const Ancestor&) {}).valid());
        CHECK(errno == ELOOP);
    }
    errno = 0;
    CHECK_FALSE(open_directory_visiting_ancestors(s.root + "/afile", [](const Ancestor&) {}).valid());
    CHECK(errno == ENOTDIR);

    // The next name is looked up in the directory that was visited, not by
    // path: another directory renamed into the path's place after the visit
    // is not the one searched.
    ::mkdir((s.root + "/other").c_str(), 0700);
    HeldFd moved = open_directory_visiting_ancestors(path, [&](const Ancestor& a) {
        if (a.path == s.root + "/releases") {
            ::rename((s.root + "/releases").c_str(), (s.root + "/releases-old").c_str());
            ::rename((s.root + "/other").c_str(), (s.root + "/releases").c_str());
        }
        if (a.path == s.root + "/releases/r1") CHECK(a.st.st_ino == stat_of(s.root + "/releases-old/r1").st_ino);
    });
    REQUIRE(moved.valid());
    CHECK(stat_of(moved.get()).st_ino == stat_of(s.root + "/releases-old/r1/public").st_ino);
}

TEST_CASE("configured release roots: symlinks followed only where only root can place them", "[helper]") {
    Scratch s;
    // A scratch directory under /tmp, owned by whoever runs the tests.
    CHECK(resolve_configured_root(s.root + "/releases") == s.root + "/releases");
    errno = 0;
    CHECK(resolve_configured_root(s.root + "/nowhere").empty());
    CHECK(errno == ENOENT);
    if (::getuid() != 0) {
        // Not root: the symlink is ours, so it must not be followed.
        CHECK_THROWS_AS(resolve_configured_root(s.root + "/releases/link"), Refusal);
        return;
    }
    // As root: /tmp is sticky and root-owned, the scratch root is ours.
    std::string link = s.root + "/releases/link";
    CHECK(resolve_configured_root(link) == s.root + "/releases/r1");
    CHECK(resolve_configured_root(s.root + "/releases/up/releases/r1") == s.root + "/releases/r1");
    ::lchown(link.c_str(), 65534, 65534);
    CHECK_THROWS_WITH(resolve_configured_root(link),
                      Catch::Contains("the symlink '" + link + "' is owned by") &&
                          Catch::Contains("write the real path"));
    ::lchown(link.c_str(), 0, 0);
    ::chmod((s.root + "/releases").c_str(), 0775);
    CHECK_THROWS_WITH(resolve_configured_root(link),
                      Catch::Contains("lies in '" + s.root + "/releases', which is owned by root but writable by group"));
    ::chmod((s.root + "/releases").c_str(), 01777);
    CHECK(resolve_configured_root(link) == s.root + "/releases/r1");  // sticky: only root may replace it
}
