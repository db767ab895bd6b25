// fpm-replica releases / prune: ordering, what keeps a release in use, the
// plan, and a removal that never follows a symlink out of the tree.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "release_inventory.h"
#include "release_layout.h"
#include "release_links.h"
#include "tree_removal.h"

using namespace fpmr::cli;
namespace fs = std::filesystem;

namespace {
struct Releases {
    fs::path root = fs::temp_directory_path() / ("fpmr-inventory-" + std::to_string(::getpid()));
    Releases() {
        fs::remove_all(root);
        for (const char* r : {"r1", "r2", "r9", "r10"}) fs::create_directories(root / "releases" / r / "src");
        fs::create_directories(root / "outside");
        std::ofstream(root / "outside" / "keep.txt") << "precious";
        fs::create_directory_symlink(root / "releases" / "r10", root / "releases" / "latest");
        fs::create_directory_symlink("releases/r10", root / "current");
    }
    ~Releases() { fs::remove_all(root); }
    std::string path(const char* r) const { return *release_directory((root / "releases" / r).string()); }
};
}  // namespace

TEST_CASE("release names sort the way they were made", "[cli][releases]") {
    CHECK(natural_less("r9", "r10"));
    CHECK_FALSE(natural_less("r10", "r9"));
    CHECK(natural_less("20261123080100", "20261124090000"));
    CHECK(natural_less("2026-11-23T0801", "2026-11-23T0900"));
    CHECK(natural_less("1", "2"));
    CHECK(natural_less("9", "10"));
    CHECK(natural_less("release-a", "release-b"));
    CHECK(natural_less("r007", "r8"));
    CHECK_FALSE(natural_less("r1", "r1"));
}

TEST_CASE("releases beside the current one, newest first, symlinks left out", "[cli][releases]") {
    Releases app;
    auto list = releases_beside(app.path("r10"));
    REQUIRE(list.size() == 4);
    CHECK(list[0].name == "r10");
    CHECK(list[1].name == "r9");
    CHECK(list[2].name == "r2");
    CHECK(list[3].name == "r1");
    CHECK(list[3].path == app.path("r1"));
}

TEST_CASE("prune keeps the newest and refuses what is in use", "[cli][releases]") {
    Releases app;
    Document doc = Document::parse(R"({"mode": "namespace", "previous_release": null,
        "prepared": {"release": ")" + app.path("r2") + R"(", "state": "failed"},
        "releases": [{"release": ")" + app.path("r9") + R"(", "in_flight": 0, "replicas": ["a"]},
                     {"release": ")" + app.path("r1") + R"(", "in_flight": 2, "replicas": []}]})");
    ReleaseUses uses = uses_of(doc, (app.root / "current").string());
    CHECK(uses.current == app.path("r10"));
    CHECK(reasons_in_use(uses, app.path("r10")) == std::vector<std::string>{"the release symlink names it"});
    CHECK(reasons_in_use(uses, app.path("r1")) == std::vector<std::string>{"2 requests in flight"});
    CHECK(reasons_in_use(uses, app.path("r9")) == std::vector<std::string>{"masters of a serve it"});
    CHECK(reasons_in_use(uses, app.path("r2")).empty());  // a failed preparation holds nothing
    PrunePlan plan = plan_prune(releases_beside(uses.current), 1, uses);
    REQUIRE(plan.kept.size() == 1);
    CHECK(plan.kept[0].name == "r10");
    REQUIRE(plan.removable.size() == 1);
    CHECK(plan.removable[0].name == "r2");
    REQUIRE(plan.refused.size() == 2);
    CHECK(plan.refused[0].first.name == "r9");
    CHECK(plan.refused[1].second == "2 requests in flight");
    // .previous and the module's previous release hold theirs too.
    fs::create_directory_symlink("releases/r2", app.root / "current.previous");
    doc["previous_release"] = app.path("r1");
    uses = uses_of(doc, (app.root / "current").string());
    CHECK(reasons_in_use(uses, app.path("r2")) == std::vector<std::string>{"<symlink>.previous names it"});
    CHECK(reasons_in_use(uses, app.path("r1")).size() == 2);
    CHECK(plan_prune(releases_beside(uses.current), 10, uses).removable.empty());
    // Named for removal (`remove`, a deploy tool's rollback cleanup): a
    // rollback record is no reason to keep it, a request or the link is.
    CHECK(reasons_not_removable(uses, app.path("r2")).empty());
    CHECK(reasons_not_removable(uses, app.path("r1")) == std::vector<std::string>{"2 requests in flight"});
    CHECK(reasons_not_removable(uses, app.path("r10")) == std::vector<std::string>{"the release symlink names it"});
    CHECK(reasons_not_removable(uses, app.path("r9")) == std::vector<std::string>{"masters of a serve it"});
}

TEST_CASE("a release tree is removed without following symlinks out of it", "[cli][releases]") {
    Releases app;
    fs::path r1 = app.root / "releases" / "r1";
    std::ofstream(r1 / "src" / "index.php") << "<?php";
    fs::create_directories(r1 / "deep" / "a" / "b");
    // What a hostile deploy user leaves: links to a directory and a file outside.
    fs::create_directory_symlink(app.root / "outside", r1 / "src" / "escape");
    fs::create_symlink(app.root / "outside" / "keep.txt", r1 / "deep" / "a" / "file-link");
    std::string error;
    REQUIRE(remove_tree((app.root / "releases").string(), "r1", &error));
    CHECK(error.empty());
    CHECK_FALSE(fs::exists(r1));
    CHECK(fs::exists(app.root / "outside" / "keep.txt"));
    // Only one path component, and a missing one is an error.
    CHECK_FALSE(remove_tree((app.root / "releases").string(), "../outside", &error));
    CHECK(fs::exists(app.root / "outside" / "keep.txt"));
    error.clear();
    CHECK_FALSE(remove_tree((app.root / "releases").string(), "gone", &error));
    CHECK(error.find("gone") != std::string::npos);
    // A symlink named as the release is not followed either.
    error.clear();
    CHECK_FALSE(remove_tree((app.root / "releases").string(), "latest", &error));
    CHECK(fs::exists(app.root / "releases" / "r10"));
}

TEST_CASE("files change only in a checked release layout", "[cli][releases]") {
    Releases app;
    ReleaseLayout layout = check_release_layout((app.root / "current").string());
    CHECK(layout.current == app.path("r10"));
    CHECK(layout.releases_dir == fs::canonical(app.root / "releases").string());
    // Reached through a symlinked directory (which its owner could swap
    // after the check), the link is changed where the check found it.
    fs::create_directory_symlink(app.root, app.root.parent_path() / (app.root.filename().string() + "-via"));
    ReleaseLayout via = check_release_layout(
        (app.root.parent_path() / (app.root.filename().string() + "-via") / "current").string());
    CHECK(via.link_path == fs::canonical(app.root).string() + "/current");
    fs::remove(app.root.parent_path() / (app.root.filename().string() + "-via"));
    auto refused = [](const fs::path& link) {
        try {
            check_release_layout(link.string());
        } catch (const Failure& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    // What a forged status document could name instead of the release symlink.
    CHECK(refused(app.root / "releases" / "r1").find("is not a symlink") != std::string::npos);
    CHECK(refused("relative/current").find("is not a symlink") != std::string::npos);
    fs::create_directory_symlink(app.root / "outside", app.root / "elsewhere");
    CHECK(refused(app.root / "elsewhere").find("does not name a release in") != std::string::npos);
    fs::create_directories(app.root / "flat" / "r1");
    fs::create_directory_symlink("r1", app.root / "flat" / "current");  // no releases/ beside it
    CHECK(refused(app.root / "flat" / "current").find("there is no directory") != std::string::npos);
    // A releases directory others may write to: someone else could swap a release.
    fs::permissions(app.root / "releases", fs::perms::group_write, fs::perm_options::add);
    CHECK(refused(app.root / "current").find("writable by others") != std::string::npos);
    fs::permissions(app.root / "releases", fs::perms::group_write, fs::perm_options::remove);
    CHECK(refused(app.root / "current").empty());
}

TEST_CASE("as root, a change is made with the rights of the layout's owner", "[cli][releases]") {
    if (::geteuid() != 0) return;  // the unit tests run as root in CI (tests/run.sh)
    Releases app;
    const uid_t nobody = 65534;
    for (const auto& p : {app.root, app.root / "releases", app.root / "releases" / "r1"}) {
        REQUIRE(::chown(p.c_str(), nobody, nobody) == 0);
    }
    REQUIRE(::lchown((app.root / "current").c_str(), nobody, nobody) == 0);
    ReleaseLayout layout = check_release_layout((app.root / "current").string());
    CHECK(layout.owner == nobody);
    change_as_layout_owner(layout, [&] { std::ofstream(app.root / "releases" / "r1" / "made"); });
    struct stat st;
    REQUIRE(::stat((app.root / "releases" / "r1" / "made").c_str(), &st) == 0);
    CHECK(st.st_uid == nobody);
    // What the owner cannot do fails, with the child's own message.
    std::string message;
    try {
        // root's directory: the owner may not write there, so neither may the change.
        change_as_layout_owner(layout, [&] {
            std::ofstream out(app.root / "outside" / "planted");
            if (!out) throw Failure("cannot write " + (app.root / "outside" / "planted").string());
        });
    } catch (const Failure& e) {
        message = e.what();
    }
    CHECK(message == "cannot write " + (app.root / "outside" / "planted").string());
    CHECK_FALSE(fs::exists(app.root / "outside" / "planted"));
}
