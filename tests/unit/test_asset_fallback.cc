// Asset continuity: which other releases may serve a file the pinned one
// lacks, and which never may.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "asset_fallback.h"
#include "config_parse.h"
#include "release_order.h"

using namespace fpmr;
namespace fs = std::filesystem;

namespace {
struct Releases {
    fs::path root = fs::temp_directory_path() / ("fpmr-assets-" + std::to_string(::getpid()));
    Releases() {
        fs::remove_all(root);
        for (const char* r : {"r1", "r2", "r3", "r10"}) fs::create_directories(root / "releases" / r / "public" / "assets");
        fs::create_directories(root / "secret");
        std::ofstream(root / "secret" / "key") << "k";
    }
    ~Releases() { fs::remove_all(root); }
    std::string release(const char* r) const { return fs::canonical(root / "releases" / r).string(); }
    void put(const char* r, const char* path) const { std::ofstream(root / "releases" / r / path) << r; }
};
}  // namespace

TEST_CASE("a missing asset is found in the newest other releases that have it", "[assets]") {
    Releases app;
    app.put("r1", "public/assets/app.1.js");
    app.put("r2", "public/assets/app.1.js");
    app.put("r10", "public/assets/app.10.js");
    auto found = asset_candidates(app.release("r3"), app.release("r3") + "/public/assets/app.1.js", 3);
    REQUIRE(found.size() == 2);
    CHECK(found[0].release_id == "r2");  // r10 is newest but lacks it; r2 before r1
    CHECK(found[0].path == app.release("r2") + "/public/assets/app.1.js");
    CHECK(found[1].release_id == "r1");
    // A host still on an older release finds the newer one's asset.
    found = asset_candidates(app.release("r1"), app.release("r1") + "/public/assets/app.10.js", 3);
    REQUIRE(found.size() == 1);
    CHECK(found[0].release_id == "r10");
    // Only `releases=N` of them are looked at: r10, r3 hold nothing.
    CHECK(asset_candidates(app.release("r3"), app.release("r3") + "/public/assets/app.1.js", 1).empty());
}

TEST_CASE("never a path outside a release, a directory, or a dot path", "[assets]") {
    Releases app;
    app.put("r1", "public/assets/app.js");
    // A release's symlink out of its tree is not followed out.
    fs::create_symlink(app.root / "secret" / "key", app.root / "releases" / "r1" / "public" / "assets" / "key");
    CHECK(asset_candidates(app.release("r2"), app.release("r2") + "/public/assets/key", 3).empty());
    // A directory of the same name is not a file to serve.
    fs::create_directories(app.root / "releases" / "r1" / "public" / "assets" / "dir");
    CHECK(asset_candidates(app.release("r2"), app.release("r2") + "/public/assets/dir", 3).empty());
    CHECK(asset_candidates(app.release("r2"), app.release("r2") + "/public/../../r1/public/assets/app.js", 3).empty());
    CHECK(asset_candidates(app.release("r2"), app.release("r2") + "/./public/assets/app.js", 3).empty());
    // Not under the pinned release at all.
    CHECK(asset_candidates(app.release("r2"), app.release("r1") + "/public/assets/app.js", 3).empty());
    CHECK(asset_candidates(app.release("r2"), app.release("r2"), 3).empty());
    CHECK(asset_candidates("", "/public/assets/app.js", 3).empty());
    CHECK(asset_candidates(app.release("r2"), app.release("r2") + "/public/assets/app.js", 3).size() == 1);
}

TEST_CASE("FpmReplicaAssetFallback's arguments", "[assets][config]") {
    std::string error;
    auto spec = parse_asset_fallback({"\\.(js|css)$"}, &error);
    REQUIRE(spec);
    CHECK(spec->releases == 3);
    spec = parse_asset_fallback({"^/build/", "releases=5"}, &error);
    REQUIRE(spec);
    CHECK(spec->releases == 5);
    CHECK_FALSE(parse_asset_fallback({}, &error));
    CHECK_FALSE(parse_asset_fallback({"x", "releases=0"}, &error));
    CHECK(error == "releases=0 must be a number from 1 to 16");
    CHECK_FALSE(parse_asset_fallback({"x", "releases=17"}, &error));
    CHECK_FALSE(parse_asset_fallback({"x", "keep=2"}, &error));
    CHECK(error == "unknown option 'keep=2' (the option is releases=N)");
    CHECK_FALSE(parse_asset_fallback({"x", "releases=2", "y"}, &error));
}

TEST_CASE("release directories in natural order, newest first", "[assets]") {
    Releases app;
    fs::create_directory_symlink(app.root / "releases" / "r1", app.root / "releases" / "r99");
    auto list = releases_beside(app.release("r1"));
    REQUIRE(list.size() == 4);  // the symlink r99 is no release
    CHECK(list[0].name == "r10");
    CHECK(list[3].name == "r1");
}
