// fpm-replica's flip of the release symlink: one rename, the link's form
// kept, the old text recorded as <symlink>.previous.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <string>

#include "release_links.h"

using namespace fpmr::cli;
namespace fs = std::filesystem;

namespace {
struct App {
    fs::path root = fs::temp_directory_path() / ("fpmr-links-" + std::to_string(::getpid()));
    App() {
        fs::remove_all(root);
        fs::create_directories(root / "releases" / "r1");
        fs::create_directories(root / "releases" / "r2");
    }
    ~App() { fs::remove_all(root); }
    std::string link() const { return (root / "current").string(); }
    std::string real(const char* rid) const { return *release_directory((root / "releases" / rid).string()); }
};
}  // namespace

TEST_CASE("a relative release symlink stays relative when flipped", "[cli]") {
    App app;
    fs::create_symlink("releases/r1", app.link());
    flip_release_symlink(app.link(), app.real("r2"));
    CHECK(fs::read_symlink(app.link()) == "releases/r2");
    CHECK(fs::read_symlink(app.link() + ".previous") == "releases/r1");
    CHECK(release_directory(app.link()) == app.real("r2"));
    CHECK(release_directory(app.link() + ".previous") == app.real("r1"));
    CHECK_FALSE(fs::exists(app.link() + ".tmp-" + std::to_string(::getpid())));
}

TEST_CASE("an absolute release symlink stays absolute when flipped", "[cli]") {
    App app;
    fs::create_symlink(app.real("r1"), app.link());
    flip_release_symlink(app.link(), app.real("r2"));
    CHECK(fs::read_symlink(app.link()) == app.real("r2"));
    CHECK(fs::read_symlink(app.link() + ".previous") == app.real("r1"));
    CHECK(is_symlink(app.link()));
    CHECK(release_directory(app.link()) == app.real("r2"));
    CHECK_FALSE(release_directory((app.root / "missing").string()));
}
